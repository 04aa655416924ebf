#!/usr/bin/env python3
"""Dead-link check for the repository's Markdown files (`make lint`).

Every `*.md` file that git knows of (tracked, or new and not ignored),
outside `node_modules/` and `target/`, is scanned for relative links:
inline `[text](path)`, `[text](path#anchor)` and `![alt](path)`, and
reference definitions `[label]: path`. A link fails when its path does not
exist relative to the file that holds it (a path starting with `/` is taken
from the repository root), or when its `#anchor` names no heading of the
Markdown file it points to. Links with a scheme (`https:`, `mailto:`, ...)
are not checked, nor is anything inside code blocks or code spans.

Prints one line per dead link, `file:line: target: reason`, and exits 1;
exits 0 when every link resolves. Python 3 standard library only.
"""

import os
import re
import subprocess
import sys
from urllib.parse import unquote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPPED_DIRS = ("node_modules", "target")

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) or ![alt](target); the target may be <wrapped> and may
# carry a "title". Nested brackets in the text are allowed one level deep.
INLINE = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_files():
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    files = set()
    for path in out.split("\0"):
        if not path or any(part in SKIPPED_DIRS for part in path.split("/")):
            continue
        if os.path.isfile(os.path.join(ROOT, path)):  # deleted but still in the index
            files.add(path)
    return sorted(files)


def lines_outside_code(text):
    """(line number, line) for each line not inside a fenced code block,
    with code spans blanked out."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence:
            if match and match.group(1) == fence:
                fence = None
            continue
        if match:
            fence = match.group(1)
            continue
        yield number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """The anchor GitHub gives a heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


_anchors = {}


def anchors(path):
    if path not in _anchors:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        found, seen = set(), {}
        fence = None
        for line in text.splitlines():
            match = FENCE.match(line)
            if fence:
                if match and match.group(1) == fence:
                    fence = None
                continue
            if match:
                fence = match.group(1)
                continue
            heading = HEADING.match(line)
            if heading:
                base = slug(heading.group(2))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
        found.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
        _anchors[path] = found
    return _anchors[path]


def check(md):
    """Yields (line, target, reason) for each dead link in `md`."""
    with open(os.path.join(ROOT, md), encoding="utf-8") as f:
        text = f.read()
    here = os.path.dirname(os.path.join(ROOT, md))
    for number, line in lines_outside_code(text):
        targets = [m.group(1) for m in INLINE.finditer(line)]
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        for raw in targets:
            target = raw[1:-1] if raw.startswith("<") else raw
            if not target or SCHEME.match(target):
                continue
            path, _, anchor = target.partition("#")
            path = unquote(path.split("?", 1)[0])
            if path.startswith("/"):
                resolved = os.path.join(ROOT, path.lstrip("/"))
            elif path:
                resolved = os.path.normpath(os.path.join(here, path))
            else:
                resolved = os.path.join(ROOT, md)
            if not os.path.exists(resolved):
                where = os.path.relpath(resolved, ROOT)
                yield number, target, f"no such file or directory ({where})"
                continue
            if anchor and resolved.endswith(".md") and os.path.isfile(resolved):
                if unquote(anchor).lower() not in anchors(resolved):
                    where = os.path.relpath(resolved, ROOT)
                    yield number, target, f"no heading with anchor #{anchor} in {where}"


def main():
    files = markdown_files()
    dead = 0
    for md in files:
        for number, target, reason in check(md):
            print(f"{md}:{number}: dead link {target}: {reason}", file=sys.stderr)
            dead += 1
    if dead:
        print(f"check-links: {dead} dead link(s) in {len(files)} Markdown files", file=sys.stderr)
        return 1
    print(f"check-links: {len(files)} Markdown files, no dead links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
