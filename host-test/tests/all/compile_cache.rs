//! The compiled-code cache of `TaskHost::load_with_cache`, against the real
//! component. Each test has a cache directory of its own, passed explicitly:
//! tests run in parallel and `TASK_HOST_CACHE_DIR` is process-wide.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::TempDir;
use host_test::{default_component_path, CacheMode, CacheOutcome, TaskHost, TaskOptions};

/// A test's cache directory inside its temporary one: not created yet, so
/// that the host has to create it.
fn cache_in(tmp: &TempDir) -> PathBuf {
    tmp.join("cache")
}

fn component() -> PathBuf {
    let path = default_component_path();
    assert!(
        path.is_file(),
        "{} is missing: run `make component`",
        path.display()
    );
    path
}

fn load(component: &Path, cache: &Path) -> TaskHost {
    TaskHost::load_with_cache(component, CacheMode::Dir(cache.to_path_buf())).unwrap()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The host really runs: `describe` answers with JSON Schemas.
async fn assert_works(host: &TaskHost) {
    let schemas = host.describe(&TaskOptions::default()).await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&schemas).unwrap();
    assert!(value.is_object(), "describe returned {schemas}");
}

#[tokio::test]
async fn the_first_load_stores_an_entry_and_the_second_uses_it() {
    let tmp = TempDir::new("compile-cache-hit");
    let cache = cache_in(&tmp);

    let first = load(&component(), &cache);
    assert_eq!(first.cache_outcome(), CacheOutcome::Miss);
    let entry = first.cache_entry().unwrap().to_path_buf();
    assert_eq!(entries(&cache), vec![entry.clone()]);
    assert!(fs::metadata(&entry).unwrap().len() > 0);
    assert_works(&first).await;

    let second = load(&component(), &cache);
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(second.cache_entry(), Some(entry.as_path()));
    assert_eq!(entries(&cache), vec![entry]);
    assert_works(&second).await;
}

#[cfg(unix)]
#[test]
fn the_cache_directory_and_entries_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = TempDir::new("compile-cache-private");
    let cache = cache_in(&tmp);
    let host = load(&component(), &cache);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(host.cache_entry().unwrap()), 0o600);
}

/// Loads once to create the entry, damages it with `damage`, and checks that
/// the next load notices, rebuilds, works, and leaves a good entry behind.
async fn assert_rebuilt_after(test: &str, damage: impl FnOnce(&Path)) {
    let tmp = TempDir::new(&format!("compile-cache-{test}"));
    let cache = cache_in(&tmp);
    let entry = load(&component(), &cache)
        .cache_entry()
        .unwrap()
        .to_path_buf();
    let intact = fs::read(&entry).unwrap();

    damage(&entry);
    assert_ne!(fs::read(&entry).ok(), Some(intact.clone()), "not damaged");

    let rebuilt = load(&component(), &cache);
    assert_eq!(rebuilt.cache_outcome(), CacheOutcome::Rebuilt);
    assert_eq!(rebuilt.cache_entry(), Some(entry.as_path()));
    assert_works(&rebuilt).await;

    let again = load(&component(), &cache);
    assert_eq!(again.cache_outcome(), CacheOutcome::Hit);
    assert_works(&again).await;
}

fn flip_bytes_at(entry: &Path, at: impl Fn(usize) -> usize) {
    let mut bytes = fs::read(entry).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= 0xff;
    bytes[i + 1] ^= 0x5a;
    fs::write(entry, bytes).unwrap();
}

#[tokio::test]
async fn flipped_bytes_in_the_compiled_code_are_detected() {
    assert_rebuilt_after("flip-code", |entry| flip_bytes_at(entry, |len| len / 2)).await;
}

#[tokio::test]
async fn flipped_bytes_at_the_end_are_detected() {
    assert_rebuilt_after("flip-end", |entry| flip_bytes_at(entry, |len| len - 2)).await;
}

#[tokio::test]
async fn a_damaged_header_is_detected() {
    assert_rebuilt_after("flip-header", |entry| flip_bytes_at(entry, |_| 3)).await;
}

#[tokio::test]
async fn a_truncated_entry_is_detected() {
    assert_rebuilt_after("truncated", |entry| {
        let len = fs::metadata(entry).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(entry)
            .unwrap()
            .set_len(len * 2 / 3)
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_empty_entry_is_detected() {
    assert_rebuilt_after("empty", |entry| fs::write(entry, b"").unwrap()).await;
}

#[tokio::test]
async fn an_entry_with_bytes_appended_is_detected() {
    assert_rebuilt_after("appended", |entry| {
        let mut bytes = fs::read(entry).unwrap();
        bytes.extend_from_slice(b"trailing");
        fs::write(entry, bytes).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_bare_wasmtime_artefact_is_not_trusted() {
    // Valid precompiled code without this cache's header and digests.
    assert_rebuilt_after("bare-cwasm", |entry| {
        let engine = wasmtime::Engine::default();
        let wasm = fs::read(component()).unwrap();
        fs::write(entry, engine.precompile_component(&wasm).unwrap()).unwrap();
    })
    .await;
}

/// The same component with a custom section appended: a valid component
/// with different bytes.
fn variant_of(component: &Path, dir: &Path, build: &str) -> PathBuf {
    let mut wasm = fs::read(component).unwrap();
    let name = b"cache-test";
    let payload = build.as_bytes();
    let size = 1 + name.len() + payload.len();
    assert!(size < 0x80 && name.len() < 0x80, "one-byte LEB128 sizes");
    wasm.extend_from_slice(&[0, size as u8, name.len() as u8]);
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(payload);
    let path = dir.join(format!("variant-{build}.wasm"));
    fs::write(&path, wasm).unwrap();
    path
}

#[tokio::test]
async fn a_different_component_gets_an_entry_of_its_own() {
    let tmp = TempDir::new("compile-cache-variant");
    let cache = cache_in(&tmp);
    let variant = variant_of(&component(), tmp.path(), "another build");

    let original = load(&component(), &cache);
    assert_eq!(original.cache_outcome(), CacheOutcome::Miss);
    let changed = load(&variant, &cache);
    assert_eq!(changed.cache_outcome(), CacheOutcome::Miss);
    assert_works(&changed).await;

    let (a, b) = (
        original.cache_entry().unwrap(),
        changed.cache_entry().unwrap(),
    );
    assert_ne!(a, b);
    assert_eq!(entries(&cache), {
        let mut both = vec![a.to_path_buf(), b.to_path_buf()];
        both.sort();
        both
    });

    assert_eq!(
        load(&component(), &cache).cache_outcome(),
        CacheOutcome::Hit
    );
    assert_eq!(load(&variant, &cache).cache_outcome(), CacheOutcome::Hit);
}

#[tokio::test]
async fn another_components_intact_entry_is_not_trusted() {
    let tmp = TempDir::new("compile-cache-swapped");
    let cache = cache_in(&tmp);
    let variant = variant_of(&component(), tmp.path(), "another build");
    let original_entry = load(&component(), &cache)
        .cache_entry()
        .unwrap()
        .to_path_buf();
    let variant_entry = load(&variant, &cache).cache_entry().unwrap().to_path_buf();

    fs::copy(&original_entry, &variant_entry).unwrap();
    let host = load(&variant, &cache);
    assert_eq!(host.cache_outcome(), CacheOutcome::Rebuilt);
    assert_works(&host).await;
}

#[tokio::test]
async fn without_a_usable_directory_the_component_is_just_compiled() {
    let tmp = TempDir::new("compile-cache-unusable");
    let file = tmp.join("a-file");
    fs::write(&file, b"not a directory").unwrap();

    let host = load(&component(), &file.join("cache"));
    assert_eq!(host.cache_outcome(), CacheOutcome::Disabled);
    assert_eq!(host.cache_entry(), None);
    assert_works(&host).await;

    let off = TaskHost::load_with_cache(&component(), CacheMode::Off).unwrap();
    assert_eq!(off.cache_outcome(), CacheOutcome::Disabled);
    assert_eq!(off.cache_entry(), None);
    assert_works(&off).await;
}

#[cfg(unix)]
#[tokio::test]
async fn an_unwritable_directory_still_serves_its_entries() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = TempDir::new("compile-cache-read-only");
    let cache = cache_in(&tmp);
    load(&component(), &cache);
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o500)).unwrap();

    let host = load(&component(), &cache);
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(host.cache_outcome(), CacheOutcome::Hit);
    assert_works(&host).await;
}

#[test]
fn a_missing_component_is_still_reported_as_before() {
    let tmp = TempDir::new("compile-cache-missing");
    let message = TaskHost::load_with_cache(
        Path::new("/nonexistent/allow_policies_batch.wasm"),
        CacheMode::Dir(cache_in(&tmp)),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(message.contains("make build"), "{message}");
}

#[test]
fn old_entries_are_pruned() {
    let tmp = TempDir::new("compile-cache-prune");
    let cache = cache_in(&tmp);
    let mut latest = None;
    for build in 0..6 {
        let variant = variant_of(&component(), tmp.path(), &format!("build {build}"));
        latest = Some(load(&variant, &cache).cache_entry().unwrap().to_path_buf());
    }
    let left = entries(&cache);
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left.contains(&latest.unwrap()));
}
