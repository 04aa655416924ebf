//! Reuse of the component's compiled code across processes.
//!
//! Cranelift takes long enough on every `task-host` start that the compiled
//! artefact is kept on disk and loaded on the next run instead.
//!
//! # Why not wasmtime's own cache (`Config::cache`)
//!
//! In wasmtime 48 the built-in cache does cover components (it sits in
//! `CodeBuilder::compile_cached`, used by `Component::new`), but it trusts
//! what it reads back: an entry is zstd-compressed without a content
//! checksum, and on a hit wasmtime only checks the ELF header and its
//! compatibility metadata before mapping the code as executable. A flipped
//! byte inside the machine code is not noticed and would be run. Only a
//! truncation that breaks decompression falls back to compiling. It also
//! starts a background worker thread per cache that rewrites entries
//! and keeps statistics files, and it reports only hit and miss counters, so
//! "this entry was corrupt and was rebuilt" cannot be observed.
//!
//! So this module keeps its own entries, made with `Component::serialize` and
//! read with `Component::deserialize`. Since `deserialize` is `unsafe` and
//! trusts its bytes, nothing reaches it until all of these hold:
//!
//! * the file starts with this module's magic and format version;
//! * it records the SHA-256 of the `.wasm` being loaded now and the SHA-256
//!   of the engine's `precompile_compatibility_hash` (target, Cranelift
//!   flags, tunables, wasm features, wasmtime version), so a changed
//!   component or changed engine settings never match an old entry; both
//!   are also in the file name, so they get entries of their own;
//! * the recorded length of the compiled code equals what follows the
//!   header, so a truncated or extended file is rejected;
//! * the SHA-256 of that code equals the one recorded when it was written.
//!
//! The check and the `deserialize` use the same in-memory copy, so the file
//! changing between the two does not matter. An entry that fails any check,
//! or that wasmtime still refuses, is deleted, and the component is
//! compiled and stored again ([`CacheOutcome::Rebuilt`]).
//!
//! SHA-256 (crate `sha2`, already compiled into wasmtime's dependency tree)
//! is there to detect corruption and stale entries, not forgery: anyone who
//! can write to the cache directory could plant an entry with matching
//! digests, and `deserialize` would map its code as executable in this
//! process. So the directory is created private to the user and used only
//! when no other user could have written to it, by the rules of
//! [`crate::private_dir`]: it is owned by this user and neither group- nor
//! world-writable, and every directory above it is owned by this user or
//! root and not writable by others unless it has the sticky bit. A
//! directory that fails them (`TASK_HOST_CACHE_DIR=/tmp`, a shared group
//! directory, another user's) is not read at all: the component is compiled
//! in memory, and the process warns once, naming the directory and why.
//!
//! Entries are written to a temporary file in the same directory and renamed
//! into place, so a concurrent reader sees either the old entry, the new one
//! or none, never part of one. Two processes that miss at the same time both
//! compile and both rename; either result is valid. No `fsync`: a crash can
//! at worst leave a torn file, which the checks above turn into a rebuild.
//!
//! The cache is an optimisation only. Any failure to find, create, read,
//! write or clean the directory ends in compiling as if there were no cache.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::private_dir::{create_private_dir, Untrusted};

/// Names the cache directory under `$XDG_CACHE_HOME` or `$HOME/.cache`.
const APP_DIR: &str = "allow-policies-batch";

/// Overrides the cache directory; read only by [`CacheMode::UserDefault`].
pub const CACHE_DIR_ENV: &str = "TASK_HOST_CACHE_DIR";

/// Bumped whenever the layout below changes, so older files are rejected
/// and, being keyed with it, never even looked at.
const MAGIC: &[u8; 16] = b"apb-cwasm-cache1";

/// magic, wasm digest, engine digest, code length (u64 LE), code digest.
const HEADER_LEN: usize = MAGIC.len() + 32 + 32 + 8 + 32;

const ENTRY_EXTENSION: &str = "cwasm-entry";
const TEMP_EXTENSION: &str = "tmp";

/// Each rebuild of the component leaves a new entry of a few megabytes;
/// beyond this many, the least recently used ones go.
const MAX_ENTRIES: usize = 4;

/// A temporary file this old was left by a process that died while writing;
/// younger ones may still be being written.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Where [`crate::TaskHost::load_with_cache`] keeps compiled code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// `$TASK_HOST_CACHE_DIR` if set, else
    /// `$XDG_CACHE_HOME/allow-policies-batch`, else
    /// `$HOME/.cache/allow-policies-batch`.
    #[default]
    UserDefault,
    /// This directory, created if missing. Lets callers (tests above all)
    /// avoid the process-wide environment.
    Dir(PathBuf),
    /// Always compile; read and write nothing.
    Off,
}

impl CacheMode {
    /// The directory this mode names, without creating it; `None` when
    /// caching is off or no variable gives a place.
    pub fn directory(&self) -> Option<PathBuf> {
        match self {
            CacheMode::UserDefault => user_cache_dir(|name| std::env::var_os(name)),
            CacheMode::Dir(dir) => Some(dir.clone()),
            CacheMode::Off => None,
        }
    }
}

/// What loading the component did with the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// A verified entry was used; nothing was compiled.
    Hit,
    /// There was no entry; the component was compiled and (if the directory
    /// was writable) stored.
    Miss,
    /// An entry existed but was corrupt, truncated, unreadable or refused by
    /// wasmtime; it was discarded, and the component compiled and stored.
    Rebuilt,
    /// Caching was off, no variable names a directory, or the directory
    /// is not one only this user can write to
    /// ([`crate::TaskHost::cache_refusal`] says why); compiled only.
    Disabled,
}

pub(crate) struct Loaded {
    pub component: Component,
    pub outcome: CacheOutcome,
    /// The entry that was used or written; `None` when nothing is on disk.
    pub entry: Option<PathBuf>,
    /// Why the cache directory was not used, when it was refused.
    pub refused: Option<Untrusted>,
}

/// Errors are only those of compiling `wasm`; cache problems never surface.
pub(crate) fn load_component(
    engine: &Engine,
    wasm: &[u8],
    mode: &CacheMode,
) -> wasmtime::Result<Loaded> {
    let refused = |why: Option<Untrusted>| -> wasmtime::Result<Loaded> {
        Ok(Loaded {
            component: Component::from_binary(engine, wasm)?,
            outcome: CacheOutcome::Disabled,
            entry: None,
            refused: why,
        })
    };
    let Some(dir) = mode.directory() else {
        return refused(None);
    };
    if let Err(why) = create_private_dir(&dir) {
        warn_once(&why);
        return refused(Some(why));
    }

    let key = EntryKey::new(engine, wasm);
    let entry = dir.join(key.file_name());

    let outcome = match fs::read(&entry) {
        Ok(bytes) => match key.verified_code(&bytes) {
            Some(code) => {
                // SAFETY: `code` is, byte for byte, what `Component::serialize`
                // produced for this same `.wasm` under an engine whose
                // compatibility hash equals this one's: `verified_code`
                // checked the recorded digests and length against this very
                // buffer, which is what gets deserialized (no re-read of the
                // file in between).
                match unsafe { Component::deserialize(engine, code) } {
                    Ok(component) => {
                        mark_used(&entry);
                        return Ok(Loaded {
                            component,
                            outcome: CacheOutcome::Hit,
                            entry: Some(entry),
                            refused: None,
                        });
                    }
                    Err(_) => CacheOutcome::Rebuilt,
                }
            }
            None => CacheOutcome::Rebuilt,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => CacheOutcome::Miss,
        Err(_) => CacheOutcome::Rebuilt,
    };
    if outcome == CacheOutcome::Rebuilt {
        // A writer's rename replaces the file anyway; removing it first also
        // covers the case where the new entry cannot be written.
        let _ = fs::remove_file(&entry);
    }

    let component = Component::from_binary(engine, wasm)?;
    let stored = component
        .serialize()
        .is_ok_and(|code| write_atomically(&dir, &entry, &key.header(&code), &code).is_ok());
    if stored {
        prune(&dir, &entry);
    }
    Ok(Loaded {
        component,
        outcome,
        entry: stored.then_some(entry),
        refused: None,
    })
}

/// Empty variables count as unset, and a relative `XDG_CACHE_HOME` is
/// ignored, as the XDG base directory specification asks.
fn user_cache_dir(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(CACHE_DIR_ENV) {
        return Some(dir);
    }
    if let Some(xdg) = set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Some(xdg.join(APP_DIR));
    }
    set("HOME").map(|home| home.join(".cache").join(APP_DIR))
}

/// Says once per process, on stderr, that compiled code is not cached and
/// why: a host loaded many times (the tests, a worker) need not repeat it.
fn warn_once(why: &Untrusted) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        crate::printing::stderr_line(&format!(
            "task-host: warning: compiled code is not cached, the component is compiled on every start: {why}"
        ));
    }
}

/// What an entry must match: the component's bytes and the engine's
/// compilation settings.
struct EntryKey {
    wasm: [u8; 32],
    engine: [u8; 32],
}

impl EntryKey {
    fn new(engine: &Engine, wasm: &[u8]) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            wasm: Sha256::digest(wasm).into(),
            engine: hasher.0.finalize().into(),
        }
    }

    fn file_name(&self) -> String {
        let mut name = Sha256::new();
        name.update(MAGIC);
        name.update(self.wasm);
        name.update(self.engine);
        format!("{}.{ENTRY_EXTENSION}", hex(&name.finalize()))
    }

    fn header(&self, code: &[u8]) -> Vec<u8> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&self.wasm);
        header.extend_from_slice(&self.engine);
        header.extend_from_slice(&(code.len() as u64).to_le_bytes());
        header.extend_from_slice(&Sha256::digest(code));
        header
    }

    /// The compiled code in `file`, if the file is an intact entry for this
    /// key; `None` for anything else.
    fn verified_code<'a>(&self, file: &'a [u8]) -> Option<&'a [u8]> {
        let (header, code) = file.split_at_checked(HEADER_LEN)?;
        let (magic, rest) = header.split_at(MAGIC.len());
        let (wasm, rest) = rest.split_at(32);
        let (engine, rest) = rest.split_at(32);
        let (len, digest) = rest.split_at(8);
        let len = u64::from_le_bytes(len.try_into().ok()?);
        let intact = magic == MAGIC
            && wasm == self.wasm
            && engine == self.engine
            && u64::try_from(code.len()).ok()? == len
            && Sha256::digest(code).as_slice() == digest;
        intact.then_some(code)
    }
}

/// Feeds wasmtime's `Hash` of the engine settings into SHA-256: `std`'s
/// hashers are neither collision-resistant nor promised to be stable from
/// one build to the next, and the result has to match across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is used")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Temporary names are unique per process and per call, so concurrent
/// writers never share one.
fn write_atomically(dir: &Path, target: &Path, header: &[u8], code: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{}.{}.{}.{TEMP_EXTENSION}",
        target
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(header)?;
            file.write_all(code)
        })
        .and_then(|()| fs::rename(&temp, target));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Keeps recently used entries at the head of the pruning order.
fn mark_used(entry: &Path) {
    if let Ok(file) = fs::OpenOptions::new().write(true).open(entry) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Keeps the newest [`MAX_ENTRIES`] entries (always `keep`, just written)
/// and removes temporary files abandoned by crashed writers. Best effort: a
/// concurrent process may be doing the same.
fn prune(dir: &Path, keep: &Path) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut entries = Vec::new();
    for item in listing.flatten() {
        let path = item.path();
        let Some(modified) = item.metadata().ok().and_then(|m| m.modified().ok()) else {
            continue;
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some(ENTRY_EXTENSION) if path != keep => entries.push((modified, path)),
            Some(TEMP_EXTENSION)
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMP_AGE =>
            {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
    entries.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, path) in entries.into_iter().skip(MAX_ENTRIES - 1) {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn dir_from(vars: &[(&str, &str)]) -> Option<PathBuf> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        user_cache_dir(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_cache_directory_follows_the_documented_order() {
        let all = [
            (CACHE_DIR_ENV, "/explicit"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(dir_from(&all), Some(PathBuf::from("/explicit")));
        assert_eq!(
            dir_from(&all[1..]),
            Some(PathBuf::from("/xdg/allow-policies-batch"))
        );
        assert_eq!(
            dir_from(&all[2..]),
            Some(PathBuf::from("/home/u/.cache/allow-policies-batch"))
        );
        assert_eq!(dir_from(&[]), None);
    }

    #[test]
    fn empty_variables_and_a_relative_xdg_cache_home_are_ignored() {
        assert_eq!(
            dir_from(&[
                (CACHE_DIR_ENV, ""),
                ("XDG_CACHE_HOME", "relative"),
                ("HOME", "/home/u"),
            ]),
            Some(PathBuf::from("/home/u/.cache/allow-policies-batch"))
        );
        assert_eq!(dir_from(&[("HOME", "")]), None);
    }

    #[test]
    fn off_names_no_directory() {
        assert_eq!(CacheMode::Off.directory(), None);
        let dir = PathBuf::from("/some/where");
        assert_eq!(CacheMode::Dir(dir.clone()).directory(), Some(dir));
    }

    fn key() -> EntryKey {
        EntryKey {
            wasm: [1; 32],
            engine: [2; 32],
        }
    }

    fn entry(code: &[u8]) -> Vec<u8> {
        let mut file = key().header(code);
        file.extend_from_slice(code);
        file
    }

    #[test]
    fn an_intact_entry_yields_its_code() {
        let code = b"compiled code";
        assert_eq!(key().verified_code(&entry(code)), Some(&code[..]));
    }

    #[test]
    fn any_damage_or_mismatch_is_refused() {
        let code = b"compiled code";
        let good = entry(code);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert_eq!(key().verified_code(&bad), None, "flip at byte {i}");
        }
        for len in 0..good.len() {
            assert_eq!(key().verified_code(&good[..len]), None, "cut at {len}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(key().verified_code(&longer), None);

        let other_wasm = EntryKey {
            wasm: [3; 32],
            engine: [2; 32],
        };
        let other_engine = EntryKey {
            wasm: [1; 32],
            engine: [3; 32],
        };
        assert_eq!(other_wasm.verified_code(&good), None);
        assert_eq!(other_engine.verified_code(&good), None);
        assert_ne!(other_wasm.file_name(), key().file_name());
        assert_ne!(other_engine.file_name(), key().file_name());
    }
}
