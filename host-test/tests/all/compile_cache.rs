//! The compiled-code cache of `TaskHost::load_with_cache`, against the real
//! component. Each test has a cache directory of its own, passed explicitly:
//! tests run in parallel and `TASK_HOST_CACHE_DIR` is process-wide.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::TempDir;
#[cfg(unix)]
use host_test::private_dir::Untrusted;
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

/// Loads once so that a valid entry is there, then lets `plant` change who
/// may write where, and checks that the next load reads nothing from the
/// cache (the entry, valid as it is, could have been planted) and says why:
/// `refused` gets the reason and the directory it names.
#[cfg(unix)]
async fn assert_refused_after(
    test: &str,
    plant: impl FnOnce(&TempDir, &Path),
    refused: impl FnOnce(&Untrusted, &Path),
) {
    let tmp = TempDir::new(&format!("compile-cache-{test}"));
    let cache = cache_in(&tmp);
    let entry = load(&component(), &cache)
        .cache_entry()
        .unwrap()
        .to_path_buf();
    let planted = fs::read(&entry).unwrap();

    plant(&tmp, &cache);
    let host = load(&component(), &cache);
    assert_eq!(host.cache_outcome(), CacheOutcome::Disabled);
    assert_eq!(host.cache_entry(), None);
    assert_works(&host).await;
    // Nothing there was read, rewritten or pruned.
    assert_eq!(fs::read(&entry).unwrap(), planted);
    let why = host.cache_refusal().expect("a reason for not caching");
    let named = match why {
        Untrusted::Writable { path, .. } | Untrusted::ForeignOwner { path, .. } => path,
        other => panic!("unexpected refusal: {other}"),
    };
    assert!(
        why.to_string().contains(named.to_str().unwrap()),
        "the warning names the directory: {why}"
    );
    refused(why, &fs::canonicalize(tmp.path()).unwrap());
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_group_writable_directory_is_not_trusted() {
    assert_refused_after(
        "group-writable",
        |_, cache| chmod(cache, 0o770),
        |why, tmp| {
            assert!(
                matches!(why, Untrusted::Writable { path, mode } if *path == tmp.join("cache") && mode & 0o777 == 0o770),
                "{why}"
            );
        },
    )
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_world_writable_directory_is_not_trusted_even_when_sticky() {
    // `TASK_HOST_CACHE_DIR=/tmp` comes to this: the sticky bit keeps others
    // from renaming entries, not from adding their own.
    assert_refused_after(
        "world-writable",
        |_, cache| chmod(cache, 0o1777),
        |why, tmp| {
            assert!(
                matches!(why, Untrusted::Writable { path, .. } if *path == tmp.join("cache")),
                "{why}"
            );
        },
    )
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_parent_others_may_write_to_is_not_trusted_unless_sticky() {
    // Whoever may write to the parent can rename the directory away and
    // put one of their own in its place.
    assert_refused_after(
        "open-parent",
        |tmp, _| chmod(tmp.path(), 0o777),
        |why, tmp| {
            assert!(
                matches!(why, Untrusted::Writable { path, .. } if path == tmp),
                "{why}"
            );
        },
    )
    .await;

    let tmp = TempDir::new("compile-cache-sticky-parent");
    let cache = cache_in(&tmp);
    load(&component(), &cache);
    chmod(tmp.path(), 0o1777);
    let host = load(&component(), &cache);
    assert_eq!(host.cache_outcome(), CacheOutcome::Hit);
    assert!(host.cache_refusal().is_none());
}

/// Only root can give a directory away; CI runs as root, so there this
/// always runs.
#[cfg(unix)]
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let probe = TempDir::new("compile-cache-whoami");
    fs::metadata(probe.path()).unwrap().uid() == 0
}

#[cfg(unix)]
#[tokio::test]
async fn a_directory_of_another_user_is_not_trusted() {
    if !running_as_root() {
        eprintln!("skipped: only root can make a directory another user's");
        return;
    }
    assert_refused_after(
        "foreign-owner",
        |_, cache| std::os::unix::fs::chown(cache, Some(4242), Some(4242)).unwrap(),
        |why, tmp| {
            assert!(
                matches!(why, Untrusted::ForeignOwner { path, owner: 4242 } if *path == tmp.join("cache")),
                "{why}"
            );
        },
    )
    .await;
    assert_refused_after(
        "foreign-parent",
        |tmp, _| std::os::unix::fs::chown(tmp.path(), Some(4242), None).unwrap(),
        |why, tmp| {
            assert!(
                matches!(why, Untrusted::ForeignOwner { path, owner: 4242 } if path == tmp),
                "{why}"
            );
        },
    )
    .await;
}

/// The process says once why it compiles every time, naming the directory.
#[cfg(unix)]
#[test]
fn task_host_warns_once_about_an_untrusted_cache_directory() {
    let tmp = TempDir::new("compile-cache-warning");
    let cache = cache_in(&tmp);
    fs::create_dir(&cache).unwrap();
    chmod(&cache, 0o770);
    let out = crate::support::task_host_command()
        .arg("describe")
        .env(host_test::CACHE_DIR_ENV, &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let canonical = fs::canonicalize(&cache).unwrap();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("not cached"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(canonical.to_str().unwrap()) && warnings[0].contains("mode 770"),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(&cache).unwrap().count(), 0, "nothing written");
}
