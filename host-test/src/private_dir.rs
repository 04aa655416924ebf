//! Directories this process keeps state in, believed only when no other
//! user could have written to them.
//!
//! A file found in such a directory steers what the host does next (a
//! record of a batch that may have applied decides whether the account is
//! read before sending), so a directory that another local user can write
//! to, or whose parent they can rename it out of, is not used at all. The
//! rules: the directory is owned by this user and neither group- nor
//! world-writable; every directory above it is owned by this user or by
//! root, and not writable by group or world unless it has the sticky bit
//! (as `/tmp` has, which lets no one rename another user's entries).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a directory is not trusted, for the warning that says so.
#[derive(Debug)]
pub enum Untrusted {
    /// It could not be created or examined.
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// It is there, but is not a directory.
    NotADirectory(PathBuf),
    /// Owned by another user (or, for a parent, by neither this user nor
    /// root).
    ForeignOwner {
        /// The directory.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
    },
    /// Others may write to it.
    Writable {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Unreadable { path, error } => {
                write!(f, "{} cannot be used: {error}", path.display())
            }
            Untrusted::NotADirectory(path) => write!(f, "{} is not a directory", path.display()),
            Untrusted::ForeignOwner { path, owner } => write!(
                f,
                "{} belongs to user {owner}, not to this user",
                path.display()
            ),
            Untrusted::Writable { path, mode } => write!(
                f,
                "{} may be written by other users (mode {:o})",
                path.display(),
                mode & 0o7777
            ),
        }
    }
}

impl std::error::Error for Untrusted {}

/// Creates `dir` and its missing parents (the new ones private to the
/// user) and checks that only this user can change what is in it.
pub fn create_private_dir(dir: &Path) -> Result<(), Untrusted> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|error| Untrusted::Unreadable {
        path: dir.to_path_buf(),
        error,
    })?;
    check_private_dir(dir)
}

/// Checks `dir` and every directory above it by the rules in the module
/// documentation, following symbolic links as opening a file in it would.
#[cfg(unix)]
pub fn check_private_dir(dir: &Path) -> Result<(), Untrusted> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    let unreadable = |path: &Path, error| Untrusted::Unreadable {
        path: path.to_path_buf(),
        error,
    };
    let dir = fs::canonicalize(dir).map_err(|e| unreadable(dir, e))?;
    let meta = fs::metadata(&dir).map_err(|e| unreadable(&dir, e))?;
    if !meta.is_dir() {
        return Err(Untrusted::NotADirectory(dir));
    }
    if meta.uid() != me {
        return Err(Untrusted::ForeignOwner {
            path: dir,
            owner: meta.uid(),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Untrusted::Writable {
            path: dir,
            mode: meta.mode(),
        });
    }
    for parent in dir.ancestors().skip(1) {
        let meta = fs::metadata(parent).map_err(|e| unreadable(parent, e))?;
        if meta.uid() != me && meta.uid() != 0 {
            return Err(Untrusted::ForeignOwner {
                path: parent.to_path_buf(),
                owner: meta.uid(),
            });
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky {
            return Err(Untrusted::Writable {
                path: parent.to_path_buf(),
                mode: meta.mode(),
            });
        }
    }
    Ok(())
}

/// Elsewhere there are no ownership bits to check: the directory need
/// only exist.
#[cfg(not(unix))]
pub fn check_private_dir(dir: &Path) -> Result<(), Untrusted> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Untrusted::NotADirectory(dir.to_path_buf())),
        Err(error) => Err(Untrusted::Unreadable {
            path: dir.to_path_buf(),
            error,
        }),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "task-host-private-dir-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_new_directory_is_private_and_trusted() {
        let top = scratch("new");
        let dir = top.join("a").join("b");
        create_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn a_group_writable_directory_is_refused() {
        let top = scratch("group");
        let dir = top.join("state");
        create_private_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        let refused = check_private_dir(&dir).unwrap_err();
        assert!(matches!(refused, Untrusted::Writable { .. }), "{refused}");
        assert!(refused.to_string().contains("mode 770"), "{refused}");
        // A parent that others may write to, without the sticky bit,
        // could have the directory renamed away and replaced.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&top, fs::Permissions::from_mode(0o777)).unwrap();
        let refused = check_private_dir(&dir).unwrap_err();
        assert!(
            matches!(&refused, Untrusted::Writable { path, .. } if path.ends_with(top.file_name().unwrap())),
            "{refused}"
        );
        fs::set_permissions(&top, fs::Permissions::from_mode(0o1777)).unwrap();
        check_private_dir(&dir).unwrap();
        fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        if rustix::process::geteuid().as_raw() != 0 {
            // Only root can give a directory away; CI runs as root.
            return;
        }
        let dir = scratch("foreign");
        create_private_dir(&dir).unwrap();
        rustix::fs::chown(
            &dir,
            Some(rustix::process::Uid::from_raw(4242)),
            Some(rustix::process::Gid::from_raw(4242)),
        )
        .unwrap();
        let refused = check_private_dir(&dir).unwrap_err();
        assert!(
            matches!(refused, Untrusted::ForeignOwner { owner: 4242, .. }),
            "{refused}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let top = scratch("file");
        create_private_dir(&top).unwrap();
        let file = top.join("f");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            check_private_dir(&file),
            Err(Untrusted::NotADirectory(_))
        ));
        fs::remove_dir_all(&top).unwrap();
    }
}
