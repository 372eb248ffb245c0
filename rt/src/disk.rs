//! Disk: positional, aligned file I/O with explicit durability.
//!
//! Production files are glommio `DmaFile`s opened with O_DIRECT and driven by io_uring; under
//! madsim they live in [`SimDisk`](crate::sim::SimDisk).
//!
//! Invariants:
//! - `write_at` offsets and lengths are multiples of [`ALIGN`] on both backends (O_DIRECT's
//!   rule, enforced in simulation too so that simulated code is valid production code).
//! - Data is durable only after [`File::sync`] returns. Until then a crash may lose or tear it
//!   (SimDisk does exactly that on kill).
//! - Directory operations (create, rename, remove) are durable once [`sync_dir`] on the parent
//!   returns.
//! - No single read allocates more than [`READ_BYTES_MAX`].

use std::io;
use std::path::{Path, PathBuf};

use crate::imp;

/// Alignment of offsets and lengths for [`File::write_at`] (the logical block size).
pub const ALIGN: usize = 4096;

/// Largest single read; bigger reads must be split by the caller.
pub const READ_BYTES_MAX: usize = 64 << 20;

/// Rounds `n` up to a multiple of [`ALIGN`].
pub const fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// How to open a file. Files are always opened for reading and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The file must exist.
    Existing,
    /// Create the file if it does not exist; keep its contents if it does.
    CreateOrOpen,
    /// Create the file; fail with `AlreadyExists` if it exists.
    CreateNew,
}

/// An open file.
pub struct File {
    inner: imp::disk::RawFile,
    path: PathBuf,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl File {
    /// Opens `path` for reading and writing.
    pub async fn open(path: impl AsRef<Path>, mode: OpenMode) -> io::Result<File> {
        let path = path.as_ref().to_path_buf();
        let inner = imp::disk::RawFile::open(&path, mode, false).await?;
        Ok(File { inner, path })
    }

    /// Opens a log file: write-through ([`File::open_write_through`]) when `write_through`,
    /// so each write is one I/O durable when it completes, else an ordinary file (synced by
    /// the caller, or never, with `dataSync=0`).
    pub async fn open_log(
        path: impl AsRef<Path>,
        mode: OpenMode,
        write_through: bool,
    ) -> io::Result<File> {
        if write_through {
            File::open_write_through(path, mode).await
        } else {
            File::open(path, mode).await
        }
    }

    /// Reads the whole file, in reads of at most [`READ_BYTES_MAX`].
    pub async fn read_all(&self) -> io::Result<Vec<u8>> {
        let size = self.size().await? as usize;
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            let chunk = self
                .read_at(out.len() as u64, (size - out.len()).min(READ_BYTES_MAX))
                .await?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Opens `path` write-through (O_DSYNC): each write is durable when it completes, as if
    /// followed by [`File::sync`], which is then a no-op. For a log that syncs after every
    /// write: one I/O per flush instead of a write and an fdatasync one after the other.
    pub async fn open_write_through(path: impl AsRef<Path>, mode: OpenMode) -> io::Result<File> {
        let path = path.as_ref().to_path_buf();
        let inner = imp::disk::RawFile::open(&path, mode, true).await?;
        Ok(File { inner, path })
    }

    /// The path this file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `len` bytes at `pos`; fewer only at end of file. Any offset and length.
    pub async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        if len > READ_BYTES_MAX {
            return Err(invalid(format!(
                "read of {len} bytes at {pos} in {} exceeds READ_BYTES_MAX ({READ_BYTES_MAX})",
                self.path.display()
            )));
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let data = self.inner.read_at(pos, len).await?;
        debug_assert!(data.len() <= len);
        Ok(data)
    }

    /// Writes `data` at `pos`. Both must be multiples of [`ALIGN`].
    pub async fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        if pos % ALIGN as u64 != 0 || data.len() % ALIGN != 0 {
            return Err(invalid(format!(
                "unaligned write to {}: offset {pos}, length {} (both must be multiples of {ALIGN})",
                self.path.display(),
                data.len()
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        self.inner.write_at(pos, data).await
    }

    /// Makes every completed write durable (fdatasync; nothing to do on a write-through file).
    pub async fn sync(&self) -> io::Result<()> {
        self.inner.sync().await
    }

    /// Reserves `len` bytes of space without changing the file size.
    pub async fn preallocate(&self, len: u64) -> io::Result<()> {
        self.inner.preallocate(len).await
    }

    /// Sets the file size to `len`, discarding or zero-extending.
    pub async fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len).await
    }

    /// The current file size in bytes.
    pub async fn size(&self) -> io::Result<u64> {
        self.inner.size().await
    }

    /// Closes the file. Unsynced data is *not* made durable by closing.
    pub async fn close(self) -> io::Result<()> {
        self.inner.close().await
    }
}

/// Renames `from` to `to`, replacing `to` if it exists (atomic on the same volume).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    imp::disk::rename(from.as_ref(), to.as_ref()).await
}

/// Removes the file at `path`.
pub async fn remove(path: impl AsRef<Path>) -> io::Result<()> {
    imp::disk::remove(path.as_ref()).await
}

/// Removes the empty directory at `path`.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    imp::disk::remove_dir(path.as_ref()).await
}

/// Creates `path` and any missing parents.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    imp::disk::create_dir_all(path.as_ref()).await
}

/// Names of the entries directly inside `dir`, sorted.
pub async fn list_dir(dir: impl AsRef<Path>) -> io::Result<Vec<String>> {
    let mut names = imp::disk::list_dir(dir.as_ref()).await?;
    names.sort();
    Ok(names)
}

/// Whether a file or directory exists at `path`.
pub async fn exists(path: impl AsRef<Path>) -> io::Result<bool> {
    imp::disk::exists(path.as_ref()).await
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub async fn sync_dir(dir: impl AsRef<Path>) -> io::Result<()> {
    imp::disk::sync_dir(dir.as_ref()).await
}

/// Reads the whole file at `path`.
pub async fn read_file(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let f = File::open(path, OpenMode::Existing).await?;
    let out = f.read_all().await?;
    f.close().await?;
    Ok(out)
}

/// Replaces the file at `path` with exactly `bytes`, crash-safely: the bytes go to
/// `<path>.tmp` (written whole, cut to their length, synced), which is renamed over `path`,
/// and the directory is synced. After a crash `path` holds the old contents or the new ones,
/// never a mix; a leftover `.tmp` is never authoritative and is replaced by the next write.
pub async fn replace_file(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let path = path.as_ref();
    let dir = path
        .parent()
        .ok_or_else(|| invalid(format!("{} has no directory", path.display())))?;
    let tmp = path.with_extension("tmp");
    if exists(&tmp).await? {
        remove(&tmp).await?;
    }
    let f = File::open(&tmp, OpenMode::CreateNew).await?;
    let mut padded = bytes.to_vec();
    padded.resize(align_up(bytes.len().max(1)), 0);
    f.write_at(0, &padded).await?;
    f.truncate(bytes.len() as u64).await?;
    f.sync().await?;
    f.close().await?;
    rename(&tmp, path).await?;
    sync_dir(dir).await
}
