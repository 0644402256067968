//! Group commit for SQLite: the fsync that lets a commit survive a power cut, shared by
//! every commit that finished before it began.
//!
//! With `synchronous = FULL` SQLite fsyncs its write-ahead log inside every commit,
//! while the database's only writer is held, so under load the writer spent much of its
//! time waiting for the disk, one commit at a time. Here every database runs with
//! `synchronous = NORMAL` — each commit writes its log frames to the file, the log is
//! synced before each checkpoint and the database file after it — and a commit whose
//! answer must survive a power cut then waits, with the writer already free for the
//! next transaction, for an fsync of the log that began after it. One fsync covers every
//! commit before it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;

pub(super) struct WalSync {
    wal: PathBuf,
    dir: PathBuf,
    /// Commits that asked to be made durable, numbered in order.
    asked: AtomicU64,
    /// Held by the one fsync running at a time; the highest number it made durable, and
    /// the inode of the log file it synced (a new log file also needs its directory
    /// synced, as SQLite does).
    synced: tokio::sync::Mutex<(u64, Option<u64>)>,
    /// fsyncs of the log so far.
    fsyncs: AtomicU64,
    /// An fsync failed. After that the kernel may have dropped the pages it could not
    /// write and a later fsync may succeed without them, so no commit is called durable
    /// any more (as PostgreSQL stops on a failed fsync): restart after checking the disk.
    failed: AtomicBool,
}

impl WalSync {
    pub(super) fn new(database: &Path) -> WalSync {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let dir = database.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        WalSync {
            wal: wal.into(),
            dir,
            asked: AtomicU64::new(0),
            synced: tokio::sync::Mutex::new((0, None)),
            fsyncs: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// Whether an fsync failed, so that no commit can be made durable any more.
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Returns once everything committed before the call is on disk.
    pub(super) async fn durable(&self) -> anyhow::Result<()> {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().await;
        anyhow::ensure!(
            !self.failed.load(Ordering::SeqCst),
            "an fsync of {} failed earlier: commits can no longer be made durable; restart after checking the disk",
            self.wal.display()
        );
        if synced.0 >= ticket {
            // An fsync that began after this commit has finished meanwhile.
            return Ok(());
        }
        // This fsync covers every commit numbered so far.
        let upto = self.asked.load(Ordering::SeqCst);
        let (wal, dir, seen) = (self.wal.clone(), self.dir.clone(), synced.1);
        let synced_now = tokio::task::spawn_blocking(move || sync(&wal, &dir, seen)).await;
        let inode = match synced_now {
            Ok(Ok(inode)) => inode,
            Ok(Err(error)) => {
                self.failed.store(true, Ordering::SeqCst);
                tracing::error!(%error, wal = %self.wal.display(), "fsync of the write-ahead log failed; no commit is durable from now on");
                return Err(error).context("failed to sync the write-ahead log");
            }
            Err(error) => return Err(error).context("the fsync's thread failed"),
        };
        *synced = (upto, inode.or(seen));
        self.fsyncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// fsyncs the log, and its directory when the log file is new; returns the log's inode.
fn sync(wal: &Path, dir: &Path, seen: Option<u64>) -> std::io::Result<Option<u64>> {
    let log = match std::fs::File::open(wal) {
        Ok(file) => file,
        // No log file: it was checkpointed into the database file, which SQLite synced.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    log.sync_data()?;
    let inode = log.metadata()?.ino();
    if seen != Some(inode) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(Some(inode))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_commit_waits_for_an_fsync_begun_after_it_and_concurrent_ones_share_it() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("m.db");
        std::fs::write(dir.path().join("m.db-wal"), b"frames").unwrap();
        let wal = Arc::new(WalSync::new(&database));
        // One after another: each needs an fsync of its own.
        wal.durable().await.unwrap();
        wal.durable().await.unwrap();
        assert_eq!(wal.fsyncs.load(Ordering::SeqCst), 2);
        // Many at once: fewer fsyncs than commits, every one of them answered.
        let many: Vec<_> = (0..64)
            .map(|_| {
                tokio::spawn({
                    let wal = wal.clone();
                    async move { wal.durable().await }
                })
            })
            .collect();
        for commit in many {
            commit.await.unwrap().unwrap();
        }
        let shared = wal.fsyncs.load(Ordering::SeqCst) - 2;
        assert!((1..64).contains(&shared), "{shared} fsyncs for 64 commits");
    }

    #[tokio::test]
    async fn after_a_failed_fsync_no_commit_is_called_durable() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("m.db-wal");
        // A log that cannot be opened (a symbolic link to itself) makes the fsync fail.
        std::os::unix::fs::symlink(&log, &log).unwrap();
        let wal = WalSync::new(&dir.path().join("m.db"));
        assert!(wal.durable().await.is_err());
        std::fs::remove_file(&log).unwrap();
        std::fs::write(&log, b"frames").unwrap();
        let error = wal.durable().await.unwrap_err();
        assert!(error.to_string().contains("failed earlier"), "{error}");
    }

    #[tokio::test]
    async fn a_log_checkpointed_away_needs_no_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let wal = WalSync::new(&dir.path().join("m.db"));
        wal.durable().await.unwrap();
    }
}
