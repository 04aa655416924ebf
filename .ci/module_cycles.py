#!/usr/bin/env python3
"""Module-cycle check for the project's Rust crates (`make lint`).

A layer may import only the layers below it, so no module may reach itself
again by following imports. This script builds each crate's module graph
and fails when the graph has a cycle of any length.

What counts, per crate:
- Modules are found from the crate root by following `mod name;`
  declarations to `name.rs` or `name/mod.rs`; an inline `mod name { ... }`
  is a module of its own. The crate root is a module too.
- An import is any path that starts with `crate::`, `super::` or `self::`,
  in a `use` line (with `{...}` groups) or inline in code, and any path that
  starts with the name of a child module the current module declares. The
  path is resolved to the longest known module it names: `crate::a::b::X`
  imports `a::b` when that module exists, else `a`; `crate::X` imports the
  crate root.
- Test code does not count: an item under `#[cfg(test)]` (a `mod tests;`,
  a test-only `use`, an inline test module) is skipped, and so is the file
  it names.
- Comments, string and character literals and `$crate::` are ignored.

Usage: module_cycles.py ROOT.rs [ROOT.rs ...]. Each argument is a crate
root (`src/lib.rs`, `src/main.rs`). Prints each cycle found, one module a
line with the file and line of the import that leads on, and exits 1;
prints a one-line summary and exits 0 when every crate is acyclic.
Python 3 standard library only.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_code(text):
    """Blank out comments and literals, keeping line breaks and offsets."""
    out = []
    i, n = 0, len(text)

    def blank(chunk):
        return "".join("\n" if c == "\n" else " " for c in chunk)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif re.match(r'b?r#*"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', text[i:])
            hashes = m.group(2)
            start = i + len(m.group(0))
            end = text.find('"' + hashes, start)
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(blank(text[i:j]))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(n, j + 1)
            out.append(blank(text[i:j]))
            i = j
        elif c == "'":
            # A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if i + 1 < n and text[i + 1] == "\\":
                j = text.find("'", i + 2)
                j = n if j < 0 else j + 1
                out.append(blank(text[i:j]))
                i = j
            elif i + 2 < n and text[i + 2] == "'":
                out.append(blank(text[i:i + 3]))
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def item_end(code, start):
    """Offset just past the item that begins at `start`: its `;` or its
    braced body, whichever closes it at depth zero."""
    depth, i, n = 0, start, len(code)
    while i < n:
        c = code[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == ";" and depth == 0:
            return i + 1
        i += 1
    return n


CFG_TEST = re.compile(r"#\[cfg\(\s*test\s*\)\]")
ATTRIBUTE = re.compile(r"\s*#\[[^\]]*\]")


def drop_test_items(code):
    """Blank every item under `#[cfg(test)]`; return the code and the names
    of the test-only modules declared with `mod name;`."""
    test_mods = set()
    while True:
        m = CFG_TEST.search(code)
        if not m:
            return code, test_mods
        start = m.start()
        pos = m.end()
        while True:
            a = ATTRIBUTE.match(code, pos)
            if not a:
                break
            pos = a.end()
        decl = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", code[pos:])
        if decl:
            test_mods.add(decl.group(1))
        end = item_end(code, pos)
        code = code[:start] + "".join("\n" if c == "\n" else " " for c in code[start:end]) + code[end:]


def line_of(code, offset):
    return code.count("\n", 0, offset) + 1


class Module:
    def __init__(self, path, file, dir_for_children, code):
        self.path = path  # tuple of names; () is the crate root
        self.file = file
        self.dir = dir_for_children
        self.code = code
        self.children = {}


def find_file(directory, name):
    for candidate in (os.path.join(directory, name + ".rs"), os.path.join(directory, name, "mod.rs")):
        if os.path.isfile(candidate):
            return candidate
    return None


MOD_DECL = re.compile(r"(?:^|[;{}\]\s])(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])")


def load_crate(root_file):
    """Every module of the crate, keyed by its path tuple."""
    modules = {}

    def load(path, file, child_dir, code):
        code, _ = drop_test_items(code)
        module = Module(path, file, child_dir, code)
        modules[path] = module
        pos = 0
        while True:
            m = MOD_DECL.search(code, pos)
            if not m:
                break
            name = m.group(1)
            if m.group(2) == ";":
                child_file = find_file(child_dir, name)
                if child_file is None:
                    raise SystemExit(f"{file}:{line_of(code, m.start(1))}: no file for `mod {name};`")
                with open(child_file, encoding="utf-8") as f:
                    child_code = strip_code(f.read())
                child_sub = os.path.dirname(child_file) if child_file.endswith("mod.rs") else os.path.join(child_dir, name)
                module.children[name] = path + (name,)
                load(path + (name,), child_file, child_sub, child_code)
                pos = m.end()
            else:
                body_start = m.end() - 1
                body_end = item_end(code, body_start)
                inner = code[body_start + 1:body_end - 1]
                # The inline module is scanned on its own; its lines keep
                # their numbers by padding with the text before it.
                padded = "".join("\n" if c == "\n" else " " for c in code[:body_start + 1]) + inner
                module.children[name] = path + (name,)
                load(path + (name,), file, os.path.join(child_dir, name), padded)
                code = code[:body_start + 1] + "".join("\n" if c == "\n" else " " for c in inner) + code[body_end - 1:]
                module.code = code
                pos = body_start + 1
        return module

    with open(root_file, encoding="utf-8") as f:
        load((), root_file, os.path.dirname(root_file), strip_code(f.read()))
    return modules


def expand_use_tree(text):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    text = re.sub(r"\s+", "", text)
    depth = 0
    for i, c in enumerate(text):
        if c == "{":
            if depth == 0:
                prefix = text[:i]
                inner = text[i + 1:text.rfind("}")]
                parts, level, last = [], 0, 0
                for j, d in enumerate(inner):
                    if d == "{":
                        level += 1
                    elif d == "}":
                        level -= 1
                    elif d == "," and level == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                result = []
                for part in parts:
                    if not part:
                        continue
                    for tail in expand_use_tree(part):
                        result.append(prefix + tail if tail != "self" else prefix.rstrip(":"))
                return result
            depth += 1
    return [text]


USE_STMT = re.compile(r"\buse\s+([^;]*);")
PATH_HEAD = re.compile(r"(?<![A-Za-z0-9_$:])((?:crate|super|self|" + IDENT + r")(?:\s*::\s*" + IDENT + r")+)")


def resolve(module, segments, modules):
    """The module a path names, as a path tuple, or None when it does not
    start at a module this crate knows."""
    head = segments[0]
    if head == "crate":
        base, rest = (), segments[1:]
    elif head in ("super", "self"):
        base = module.path
        rest = segments
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                if not base:
                    return None
                base = base[:-1]
            rest = rest[1:]
    elif head in module.children:
        base, rest = module.path, segments
    else:
        return None
    target = base
    for name in rest:
        if target + (name,) in modules:
            target = target + (name,)
        else:
            break
    return target


def imports(module, modules):
    """Each module this one imports, with the line of its first import."""
    found = {}
    code = module.code

    def note(target, offset):
        if target is not None and target != module.path and target not in found:
            found[target] = line_of(code, offset)

    for m in USE_STMT.finditer(code):
        body = re.sub(r"\s+as\s+" + IDENT, "", m.group(1))
        body = re.sub(r"^\s*::", "", body)
        for path in expand_use_tree(body):
            segments = [s for s in path.split("::") if s]
            if segments and segments[-1] == "*":
                segments = segments[:-1]
            if segments:
                note(resolve(module, segments, modules), m.start())
    without_uses = USE_STMT.sub(lambda m: " " * len(m.group(0)), code)
    for m in PATH_HEAD.finditer(without_uses):
        segments = [s.strip() for s in m.group(1).split("::")]
        note(resolve(module, segments, modules), m.start())
    return found


def name(path):
    return "crate" + "".join("::" + p for p in path)


def cycles(modules, edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(component)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return result


def shortest_cycle(component, edges):
    """One shortest cycle through the component's first module (BFS)."""
    members = set(component)
    start = min(component)
    previous = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return [start, start]


def check(root_file):
    """The cycles of one crate, each as printable lines."""
    modules = load_crate(root_file)
    edges, lines = {}, {}
    for path, module in modules.items():
        found = imports(module, modules)
        edges[path] = set(found)
        for target, line in found.items():
            lines[(path, target)] = line
    reports = []
    for component in cycles(modules, edges):
        cycle = shortest_cycle(component, edges)
        members = ", ".join(name(m) for m in sorted(component))
        report = [f"{root_file}: module cycle among {len(component)} modules ({members}); one of its circles:"]
        for a, b in zip(cycle, cycle[1:]):
            module = modules[a]
            report.append(f"  {name(a)} -> {name(b)}  ({os.path.relpath(module.file)}:{lines[(a, b)]})")
        reports.append(report)
    return modules, reports


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: module_cycles.py ROOT.rs [ROOT.rs ...]", file=sys.stderr)
        return 2
    failed, counted = False, 0
    for root in argv[1:]:
        modules, reports = check(root)
        counted += len(modules)
        for report in reports:
            failed = True
            print("\n".join(report))
    if failed:
        return 1
    print(f"module cycles: none in {len(argv) - 1} crates, {counted} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
