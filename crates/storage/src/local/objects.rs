//! Objects as files: `<data_dir>/objects/<key>`.
//!
//! Writes are atomic: the bytes go to a fresh file in
//! `<data_dir>/objects.tmp/`, are flushed to disk, and only then take the
//! key's name. A crash leaves at worst an orphaned temporary file (swept
//! when the store is next opened), never a half-written object. The
//! temporary folder is a sibling rather than a subfolder of `objects/`
//! because every file name is a possible key.
//!
//! - [`PutMode::Overwrite`] renames the temporary file over the key, which
//!   replaces any old object in one step: readers see old or new bytes.
//! - [`PutMode::CreateOnly`] hard-links the temporary file to the key. The
//!   link fails if the name exists, atomically, so of two racing writers
//!   (threads or processes) exactly one wins and the other gets
//!   [`StorageError::AlreadyExists`]. This needs a file system with hard
//!   links (any Linux or macOS disk file system; not FAT).
//!
//! The content type is not stored: the [`ObjectStore`] trait has no way to
//! read it back, and nothing serves these files over HTTP. (The S3 adapter
//! stores it as the object's `Content-Type`, for people browsing the
//! bucket.)
//!
//! Erasing a chat removes its folder `objects/<chat>/` (its first path
//! segment); erasing keys removes their files. Nothing expires by itself:
//! [`ObjectStore::sweep_expired`] removes the files last written longer
//! than the retention ago (by their modification time, which a put sets).
//!
//! Keys map to paths one to one, and [`ObjectKey`] guarantees they stay
//! inside the folder. Unlike S3, a key cannot be both an object and a
//! "folder" of other objects (`a` and `a/b`): such a put fails with
//! [`StorageError::Invalid`].

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{ChatId, ObjectKey};

use crate::{ObjectStore, PutMode, Result, Retention, StorageError};

/// What the error messages call this backend.
const BACKEND: &str = "local object store";

/// Temporary files older than this are debris of a crashed writer: no live
/// write takes this long, so sweeping them cannot hurt another process.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// The object store in a data folder. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalObjectStore {
    dirs: Arc<Dirs>,
    /// How long an object is kept after it was last written.
    retention: Retention,
}

#[derive(Debug)]
struct Dirs {
    objects: PathBuf,
    temp: PathBuf,
}

impl LocalObjectStore {
    /// Opens the store in `data_dir`, creating `objects/` and
    /// `objects.tmp/` if needed. Blocking: call at start-up.
    pub fn open(data_dir: &Path) -> Result<Self> {
        super::create_data_dir(data_dir)?;
        let objects = data_dir.join(super::OBJECTS_DIR);
        let temp = data_dir.join(format!("{}.tmp", super::OBJECTS_DIR));
        for dir in [&objects, &temp] {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::config_from(
                    format!(
                        "cannot create {} in the data folder {}",
                        dir.display(),
                        data_dir.display()
                    ),
                    e,
                )
            })?;
        }
        sweep_stale_temp_files(&temp);
        Ok(Self {
            dirs: Arc::new(Dirs { objects, temp }),
            retention: Retention::default(),
        })
    }

    /// The same store, sweeping objects older than `retention`.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The folder holding the objects.
    pub fn root(&self) -> &Path {
        &self.dirs.objects
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.dirs.objects.join(key.as_str())
    }
}

fn unavailable(path: &Path, e: std::io::Error) -> StorageError {
    StorageError::unavailable(BACKEND, path.display().to_string(), e)
}

/// A key whose path collides with another object's (`a` vs `a/b`).
fn key_conflict(key: &ObjectKey, e: std::io::Error) -> StorageError {
    StorageError::invalid_from(
        format!(
            "object key {key} conflicts with another object's path (a key cannot be both an \
             object and a prefix of other keys in the local store)"
        ),
        e,
    )
}

fn sweep_stale_temp_files(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if stale && let Err(e) = std::fs::remove_file(entry.path()) {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a stale temporary file");
        }
    }
}

/// The whole put, on a blocking thread.
fn put_blocking(dirs: &Dirs, key: &ObjectKey, bytes: &[u8], mode: PutMode) -> Result<()> {
    let dest = dirs.objects.join(key.as_str());
    let parent = dest.parent().unwrap_or(&dirs.objects);
    std::fs::create_dir_all(parent).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists | ErrorKind::NotADirectory => key_conflict(key, e),
        _ => unavailable(parent, e),
    })?;

    let temp = dirs
        .temp
        .join(format!("{}.part", uuid::Uuid::new_v4().simple()));
    let place = || match mode {
        PutMode::Overwrite => std::fs::rename(&temp, &dest),
        PutMode::CreateOnly => std::fs::hard_link(&temp, &dest),
    };
    let mut placed = write_synced(&temp, bytes).and_then(|()| place());
    if placed
        .as_ref()
        .is_err_and(|e| e.kind() == ErrorKind::NotFound)
    {
        // A sweep or an erasure removed the folder, empty, after it was
        // made above: make it again, once.
        placed = std::fs::create_dir_all(parent).and_then(|()| place());
    }
    // After a rename the temporary name is gone; after a link, or a
    // failure, it must go.
    if (mode == PutMode::CreateOnly || placed.is_err())
        && let Err(e) = std::fs::remove_file(&temp)
        && e.kind() != ErrorKind::NotFound
    {
        tracing::warn!(path = %temp.display(), error = %e, "cannot remove a temporary file");
    }
    placed.map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists if !dest.is_dir() => {
            StorageError::AlreadyExists(format!("object {key}"))
        }
        ErrorKind::AlreadyExists | ErrorKind::IsADirectory | ErrorKind::NotADirectory => {
            key_conflict(key, e)
        }
        _ => unavailable(&dest, e),
    })?;

    // The new name must be on disk too, or a power cut could lose the
    // object even though the put succeeded. Best effort: not every
    // platform can open a directory to sync it.
    if let Ok(dir) = std::fs::File::open(parent)
        && let Err(e) = dir.sync_all()
    {
        tracing::debug!(path = %parent.display(), error = %e, "cannot sync the folder");
    }
    Ok(())
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StorageError::unavailable(
            BACKEND,
            format!("the {what} task was cancelled"),
            e,
        )),
    }
}

/// Removes the file at `path`: whether it was there.
fn remove_file(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        // Gone already, or a "folder" of other keys, which is no object.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(e) if path.is_dir() => {
            tracing::debug!(path = %path.display(), error = %e, "not a file: no object");
            Ok(false)
        }
        Err(e) => Err(unavailable(path, e)),
    }
}

/// Removes the files under `dir` (every depth) that `doomed` picks, and
/// then the folders left empty (`dir` too when `remove_dir`); returns how
/// many files. A folder that is gone, or that another writer fills
/// meanwhile, is fine.
fn remove_tree(
    dir: &Path,
    doomed: &dyn Fn(&std::fs::Metadata) -> bool,
    remove_dir: bool,
) -> Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(unavailable(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| unavailable(dir, e))?;
        let path = entry.path();
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(unavailable(&path, e)),
        };
        if meta.is_dir() {
            removed += remove_tree(&path, doomed, true)?;
        } else if doomed(&meta) {
            removed += u64::from(remove_file(&path)?);
        }
    }
    // Only an empty folder goes: a put that created it a moment ago, or
    // files the sweep keeps, keep it.
    if remove_dir && let Err(e) = std::fs::remove_dir(dir) {
        tracing::debug!(path = %dir.display(), error = %e, "folder kept");
    }
    Ok(removed)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        _content_type: &str,
        mode: PutMode,
    ) -> Result<()> {
        let dirs = Arc::clone(&self.dirs);
        let key = key.clone();
        match tokio::task::spawn_blocking(move || put_blocking(&dirs, &key, &bytes, mode)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StorageError::unavailable(
                BACKEND,
                "the write task was cancelled",
                e,
            )),
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let path = self.path_of(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            // A "folder" of other objects is not an object, as in S3.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
                ) =>
            {
                Err(StorageError::NotFound(format!("object {key}")))
            }
            Err(e) => Err(unavailable(&path, e)),
        }
    }

    async fn erase_chat(&self, chat: ChatId) -> Result<u64> {
        // Every key of the chat starts with `<chat>/`: its folder.
        let dir = self.dirs.objects.join(chat.to_string());
        blocking("erase", move || remove_tree(&dir, &|_| true, true)).await
    }

    async fn erase(&self, keys: &[ObjectKey]) -> Result<u64> {
        let paths: Vec<PathBuf> = keys.iter().map(|key| self.path_of(key)).collect();
        blocking("erase", move || {
            paths.iter().try_fold(0, |removed, path| {
                Ok(removed + u64::from(remove_file(path)?))
            })
        })
        .await
    }

    async fn sweep_expired(&self, now: SystemTime) -> Result<u64> {
        let cutoff = now
            .checked_sub(self.retention.as_duration())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let dir = self.dirs.objects.clone();
        // Written before the cutoff. A file whose time cannot be read is
        // kept: better a picture too many than one lost early.
        let expired = move |meta: &std::fs::Metadata| meta.modified().is_ok_and(|at| at < cutoff);
        // The objects folder itself stays.
        blocking("sweep", move || remove_tree(&dir, &expired, false)).await
    }

    async fn check(&self) -> Result<()> {
        for dir in [&self.dirs.objects, &self.dirs.temp] {
            let meta = tokio::fs::metadata(dir)
                .await
                .map_err(|e| unavailable(dir, e))?;
            if !meta.is_dir() {
                return Err(StorageError::Unavailable {
                    backend: BACKEND,
                    what: format!("{} is not a folder", dir.display()),
                    source: None,
                });
            }
        }
        Ok(())
    }
}
