//! What the data directory keeps from other local users: the secrets (`admin-token`,
//! `auth-secret`, `cookie-key`) and the SQLite databases are the owner's alone (0600), in
//! a directory of the owner's alone (0700).
//!
//! The process's umask is 077 ([`restrict_umask`], at start), so whatever it creates —
//! SQLite's `-wal` and `-shm` files included — is private; the directory, the secrets and
//! the databases are also created with explicit modes, for when the library is embedded
//! (tests build the application in-process) and the umask is someone else's.
//!
//! As ssh does with its keys, a secret file that group or others may read or write is
//! refused, with the `chmod` that fixes it: it would let any local user act as the
//! operator or forge any buyer's token. A data directory that others may write to is
//! refused too (anyone could replace a secret or a database); one that others may only
//! read is warned about (its databases may be readable; the secrets are checked on
//! their own).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// Mode bits of group and others.
const SHARED: u32 = 0o077;

/// Sets the process's umask to 077: files and directories it creates are its user's only.
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` (and missing parents) with mode 0700 if missing; an existing directory
/// is left as it is (see [`check_dir`]).
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))
}

/// Creates the data directory if missing, refuses it when group or others may write to
/// it, and warns when they may read or enter it.
pub fn check_dir(dir: &Path) -> anyhow::Result<()> {
    create_dir(dir)?;
    let mode = mode_of(dir)?;
    anyhow::ensure!(
        mode & 0o022 == 0,
        "{} is writable by others (mode {mode:04o}), who could replace its secrets and databases; chmod 700 {0}",
        dir.display()
    );
    if mode & SHARED != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:04o}"),
            "the data directory is readable by others, and so may be its databases; chmod 700 it"
        );
    }
    Ok(())
}

/// Creates a database file `path` with mode 0600 if missing (an empty file is an empty
/// SQLite database, whose `-wal` and `-shm` files SQLite then creates with its mode).
pub fn create_private_file(path: &Path) -> anyhow::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .with_context(|| format!("failed to create {}", path.display()))
}

/// A secret kept in the data directory: read it, or make and keep a new one (mode 0600).
/// One that group or others may read or write is refused.
pub fn secret(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    match std::fs::metadata(&path) {
        Ok(_) => {
            check_private(&path)?;
            let existing =
                std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
            anyhow::ensure!(!existing.trim().is_empty(), "{} is empty; remove it to make a new one", path.display());
            return Ok(existing.trim().to_owned());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
    let fresh = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    // Written in full under a name of its own, then linked into place: a process starting
    // at the same moment reads either no secret or the whole of one, and never makes a
    // second one (the link fails when the name is taken).
    let draft = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&draft)
        .and_then(|mut file| file.write_all(fresh.as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::hard_link(&draft, &path));
    let _ = std::fs::remove_file(&draft);
    match written {
        Ok(()) => Ok(fresh),
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => secret(dir, name),
        Err(e) => Err(e).with_context(|| format!("failed to write {}", path.display())),
    }
}

/// Refuses a file that group or others may read or write, naming the fix.
fn check_private(path: &Path) -> anyhow::Result<()> {
    let mode = mode_of(path)?;
    if mode & SHARED != 0 {
        let what = if mode & 0o044 != 0 { "readable" } else { "accessible" };
        anyhow::bail!("{0} is {what} by others (mode {mode:04o}); chmod 600 {0}", path.display());
    }
    Ok(())
}

fn mode_of(path: &Path) -> anyhow::Result<u32> {
    let metadata = std::fs::metadata(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(metadata.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn secrets_are_made_private_and_shared_ones_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("nested/data");
        check_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir).unwrap(), 0o700);
        let made = secret(&dir, "admin-token").unwrap();
        assert_eq!(made.len(), 64);
        assert_eq!(mode_of(&dir.join("admin-token")).unwrap(), 0o600);
        assert_eq!(secret(&dir, "admin-token").unwrap(), made, "kept");

        for (mode, what) in [(0o644, "readable"), (0o640, "readable"), (0o604, "readable"), (0o620, "accessible")] {
            set_mode(&dir.join("admin-token"), mode);
            let error = format!("{:#}", secret(&dir, "admin-token").unwrap_err());
            let path = dir.join("admin-token").display().to_string();
            assert_eq!(error, format!("{path} is {what} by others (mode {mode:04o}); chmod 600 {path}"));
        }
        set_mode(&dir.join("admin-token"), 0o400);
        assert_eq!(secret(&dir, "admin-token").unwrap(), made, "read-only for its owner is fine");
    }

    #[test]
    fn processes_starting_together_agree_on_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let made: Vec<String> = std::thread::scope(|s| {
            let makers: Vec<_> = (0..8).map(|_| s.spawn(|| secret(dir.path(), "cookie-key").unwrap())).collect();
            makers.into_iter().map(|m| m.join().unwrap()).collect()
        });
        assert!(made.iter().all(|m| *m == made[0] && m.len() == 64), "{made:?}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["cookie-key"], "no drafts left behind");
        std::fs::write(dir.path().join("cookie-key"), "").unwrap();
        let error = format!("{:#}", secret(dir.path(), "cookie-key").unwrap_err());
        assert!(error.ends_with("cookie-key is empty; remove it to make a new one"), "{error}");
    }

    #[test]
    fn a_directory_others_may_write_to_is_refused_and_one_they_may_read_is_not() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o757);
        let error = format!("{:#}", check_dir(&dir).unwrap_err());
        assert!(error.contains("is writable by others (mode 0757)") && error.contains("chmod 700"), "{error}");
        set_mode(&dir, 0o755);
        check_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir).unwrap(), 0o755, "left as it is");
    }

    #[test]
    fn database_files_are_created_private_and_existing_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        create_private_file(&path).unwrap();
        assert_eq!(mode_of(&path).unwrap(), 0o600);
        std::fs::write(&path, b"data").unwrap();
        create_private_file(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}
