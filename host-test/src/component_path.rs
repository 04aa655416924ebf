//! Where the component is found when a command names none: the file
//! `make build` leaves, looked for near the running executable, so that the
//! host, its tests and its benchmarks all load the same build.

use std::path::{Path, PathBuf};

const COMPONENT_FILE: &str = "allow_policies_batch.wasm";

/// Where `make build` leaves the component:
/// `<target>/wasm32-wasip2/release/allow_policies_batch.wasm`.
///
/// The target directory is looked for above the running executable
/// (`target/release/task-host`, `target/release/deps/<test>`,
/// `target/release/examples/<example>`), then in `CARGO_TARGET_DIR`; when the
/// file is in none of them, the workspace's own `target/` is returned so that
/// the error names the usual place.
pub fn default_component_path() -> PathBuf {
    let relative = Path::new("wasm32-wasip2")
        .join("release")
        .join(COMPONENT_FILE);
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).take(3).map(|d| d.join(&relative)));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join(&relative));
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().unwrap_or(manifest_dir);
    let fallback = workspace.join("target").join(&relative);
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_component_path_names_the_release_component() {
        let path = default_component_path();
        assert!(path.ends_with("target/wasm32-wasip2/release/allow_policies_batch.wasm"));
    }
}
