//! The shell blocks of a Markdown file, with the `doc-test` markers above
//! them, and the rule that decides whether a block may be run here: it must
//! need nothing beyond loopback.

use std::fmt;

/// The info strings of fenced blocks that are shell command lines.
const SHELL_LANGUAGES: [&str; 4] = ["sh", "bash", "shell", "zsh"];

/// What starts a marker line; the marker ends with `-->` on the same line.
const MARKER: &str = "<!-- doc-test:";

/// One fenced shell block of a document.
#[derive(Clone, Debug)]
pub struct Block {
    /// The document, as given to [`shell_blocks`] (such as `docs/sync.md`).
    pub file: String,
    /// The line of the opening fence, counted from 1.
    pub line: usize,
    /// The block's text, every line ending in a newline.
    pub text: String,
    /// How the block is run, from the markers right above its fence.
    pub run: Run,
    /// Files the block reads that the repository does not hold, given as
    /// `(name in the run directory, repository path to copy)`.
    pub given: Vec<(String, String)>,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Whether a block is run, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Run {
    /// Run whole by bash.
    Yes,
    /// `<!-- doc-test: not run: REASON -->`: it needs more than loopback.
    NotRun(String),
}

/// A document the runner cannot take as it is: each names its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocProblem {
    /// A marker the runner does not know.
    UnknownMarker { at: String, marker: String },
    /// A marker that is not right above a shell block's fence, so it would
    /// apply to nothing.
    StrayMarker { at: String },
    /// A block that is not fenced as shell but holds command lines, which
    /// would then never be run.
    UnlabelledCommands { at: String, line: String },
    /// A shell block that is run but could reach beyond loopback.
    LeavesLoopback { at: String, why: String },
}

impl fmt::Display for DocProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocProblem::UnknownMarker { at, marker } => write!(
                f,
                "{at}: unknown marker {marker:?}: expected `not run: REASON` or `NAME is PATH`"
            ),
            DocProblem::StrayMarker { at } => write!(
                f,
                "{at}: a doc-test marker must be right above the fence of an ```sh block"
            ),
            DocProblem::UnlabelledCommands { at, line } => write!(
                f,
                "{at}: {line:?} is a command line in a block not fenced as ```sh, so it would never be run"
            ),
            DocProblem::LeavesLoopback { at, why } => write!(
                f,
                "{at}: {why}; keep the block on 127.0.0.1, or put `<!-- doc-test: not run: REASON -->` right above its fence"
            ),
        }
    }
}

/// Every fenced shell block of `markdown` (the text of `file`), with its
/// markers, or every problem found.
pub fn shell_blocks(file: &str, markdown: &str) -> Result<Vec<Block>, Vec<DocProblem>> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut used_markers = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((fence, info)) = opening_fence(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !closes(lines[i], &fence) {
            body.push(lines[i]);
            i += 1;
        }
        i += 1;
        let at = format!("{file}:{}", start + 1);
        let language = info.split_whitespace().next().unwrap_or("");
        if !SHELL_LANGUAGES.contains(&language) {
            problems.extend(body.iter().find(|l| is_command_line(l)).map(|l| {
                DocProblem::UnlabelledCommands {
                    at: at.clone(),
                    line: l.trim().to_string(),
                }
            }));
            continue;
        }
        let mut block = Block {
            file: file.to_string(),
            line: start + 1,
            text: body.iter().map(|l| format!("{l}\n")).collect(),
            run: Run::Yes,
            given: Vec::new(),
        };
        let mut above = start;
        while above > 0 && lines[above - 1].trim_start().starts_with(MARKER) {
            above -= 1;
            used_markers.push(above);
            let marker_at = format!("{file}:{}", above + 1);
            match parse_marker(lines[above]) {
                Some(Marker::NotRun(reason)) => block.run = Run::NotRun(reason),
                Some(Marker::Given(name, path)) => block.given.push((name, path)),
                None => problems.push(DocProblem::UnknownMarker {
                    at: marker_at,
                    marker: lines[above].trim().to_string(),
                }),
            }
        }
        if block.run == Run::Yes {
            problems.extend(leaves_loopback(&block.text, &block.given).map(|why| {
                DocProblem::LeavesLoopback {
                    at: at.clone(),
                    why,
                }
            }));
        }
        blocks.push(block);
    }
    for (n, line) in lines.iter().enumerate() {
        // A marker is a line of its own; prose may quote one in a code span.
        if line.trim_start().starts_with(MARKER) && !used_markers.contains(&n) {
            problems.push(DocProblem::StrayMarker {
                at: format!("{file}:{}", n + 1),
            });
        }
    }
    if problems.is_empty() {
        Ok(blocks)
    } else {
        Err(problems)
    }
}

/// The fence (its character repeated, at least three) and the info string.
fn opening_fence(line: &str) -> Option<(String, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let mark = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let length = rest.chars().take_while(|c| *c == mark).count();
    (length >= 3).then(|| (mark.to_string().repeat(length), rest[length..].trim()))
}

fn closes(line: &str, fence: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with(fence) && trimmed.chars().all(|c| fence.starts_with(c))
}

enum Marker {
    NotRun(String),
    Given(String, String),
}

fn parse_marker(line: &str) -> Option<Marker> {
    let inner = line
        .trim()
        .strip_prefix(MARKER)?
        .strip_suffix("-->")?
        .trim();
    if let Some(reason) = inner.strip_prefix("not run:") {
        let reason = reason.trim();
        return (!reason.is_empty()).then(|| Marker::NotRun(reason.to_string()));
    }
    let (name, path) = inner.split_once(" is ")?;
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('/')
            && !s.split('/').any(|part| part == "..")
            && !s.contains(char::is_whitespace)
    };
    (plain(name) && plain(path)).then(|| Marker::Given(name.to_string(), path.to_string()))
}

/// The programs whose command lines the docs must not leave unrun.
const PROGRAMS: [&str; 4] = ["task-host", "target/release/task-host", "curl", "jq"];

/// `task-host`'s commands, so that prose or a table that names the
/// program ("task-host run, first, ...") is not taken for a command line.
const TASK_HOST_COMMANDS: [&str; 6] = ["run", "describe", "export", "fake-api", "demo", "worker"];

/// Whether `line` runs one of [`PROGRAMS`]: the program first (after any
/// `NAME=value` and a `$ ` prompt), then a command, a flag or an argument.
/// A word ending in a comma marks prose or a table row (the figures of
/// docs/performance.md name what they time so).
fn is_command_line(line: &str) -> bool {
    let line = line.trim_start().trim_start_matches("$ ");
    if line.split_whitespace().any(|w| w.ends_with(',')) {
        return false;
    }
    let mut words = line.split_whitespace().skip_while(|w| w.contains('='));
    let (Some(program), Some(next)) = (words.next(), words.next()) else {
        return false;
    };
    let argument = next.starts_with(['-', '\'', '"', '.', '@']) || next.contains("://");
    match program {
        "task-host" | "target/release/task-host" => {
            TASK_HOST_COMMANDS.contains(&next) || next.starts_with('-')
        }
        _ => PROGRAMS.contains(&program) && argument,
    }
}

/// The block's command lines, each with its `\`-continued lines joined.
pub fn command_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        match line.strip_suffix('\\') {
            Some(start) => current.push_str(start),
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Whether the line's `--input` is a file of `examples/` (named so, or
/// given to the block under another name) that holds the four lists, not a
/// sync.
fn input_is_a_batch_example(line: &str, given: &[(String, String)]) -> bool {
    let mut words = line.split_whitespace();
    let Some(path) = words.by_ref().skip_while(|w| *w != "--input").nth(1) else {
        return false;
    };
    let path = given
        .iter()
        .find(|(name, _)| name == path)
        .map_or(path, |(_, from)| from.as_str());
    let Some(name) = path.strip_prefix("examples/") else {
        return false;
    };
    std::fs::read_to_string(crate::support::examples_dir().join(name))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|input| input.is_object() && input.get("sync").is_none())
}

/// Why a block could reach beyond loopback, if it could: a `task-host run`
/// that is neither a dry run nor sent to 127.0.0.1, a worker (which reaches
/// its engine's server), or a `curl` of anything but 127.0.0.1.
pub fn leaves_loopback(text: &str, given: &[(String, String)]) -> Option<String> {
    for line in command_lines(text) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.contains("task-host worker") || line.contains("task-host-temporal") {
            return Some(format!("{line:?} works for an engine's server"));
        }
        let to_loopback = line.contains("--allow-host 127.0.0.1");
        if line.contains("task-host export") && !to_loopback {
            return Some(format!("{line:?} reads an account, and not from 127.0.0.1"));
        }
        if line.contains("task-host run") && !to_loopback {
            if !line.contains("--dry-run") {
                return Some(format!(
                    "{line:?} sends a batch, and neither dry-runs it nor sends it to 127.0.0.1"
                ));
            }
            // A sync's dry run reads the account: only an example known to
            // hold the four lists is previewed without reading.
            if !input_is_a_batch_example(line, given) {
                return Some(format!(
                    "{line:?} previews an input that may be a sync, which reads the account"
                ));
            }
        }
        if line.split_whitespace().any(|w| w == "curl") {
            let urls: Vec<&str> = line
                .match_indices("://")
                .map(|(at, _)| &line[at + 3..])
                .collect();
            let off_loopback = urls
                .iter()
                .any(|rest| !rest.starts_with("127.0.0.1") && !rest.starts_with("localhost"));
            if urls.is_empty() || off_loopback {
                return Some(format!("{line:?} may fetch from beyond 127.0.0.1"));
            }
        }
    }
    None
}
