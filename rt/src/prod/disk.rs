//! glommio DMA files (O_DIRECT, io_uring). Directory listing and creation use std::fs: they are
//! rare metadata operations that io_uring does not cover well.

use std::io;
use std::path::Path;

use glommio::io::{DmaFile, OpenOptions};

use crate::disk::OpenMode;

fn to_io(e: glommio::GlommioError<()>) -> io::Error {
    e.into()
}

pub(crate) struct RawFile {
    inner: DmaFile,
    /// Opened with O_DSYNC: every completed write is already durable.
    write_through: bool,
}

thread_local! {
    /// Block devices on which this executor has already run glommio's iopoll probe.
    static PROBED_DEVICES: std::cell::RefCell<std::collections::HashSet<u64>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// Works around a glommio 0.9 bug: on the first DMA open per device and executor, glommio
/// probes io_uring IOPOLL support by reading the first block of *that* file. For an empty file
/// the read short-circuits to success, glommio wrongly concludes the device supports polling,
/// and every later read on the device fails with EOPNOTSUPP (seen on virtio disks). We make
/// the probe see real data first: a one-block scratch file, opened once per device.
async fn prime_iopoll_probe(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(()); // the open itself will report the missing directory
    };
    if PROBED_DEVICES.with(|p| p.borrow().contains(&meta.dev())) {
        return Ok(());
    }
    // Unique per call, not just per process: every executor thread of a process probes on its
    // own, and two of them sharing one name would delete each other's probe between its write
    // and glommio's open, which glommio 0.9 answers with a panic (an unwrapped ENOENT).
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".porpoise-iopoll-probe-{}-{n}", std::process::id()));
    std::fs::write(&probe, [0u8; crate::disk::ALIGN])?;
    let opened = OpenOptions::new().read(true).dma_open(&probe).await;
    let _ = std::fs::remove_file(&probe);
    if let Ok(f) = opened {
        let _ = f.close().await;
    }
    PROBED_DEVICES.with(|p| p.borrow_mut().insert(meta.dev()));
    Ok(())
}

impl RawFile {
    pub(crate) async fn open(path: &Path, mode: OpenMode, write_through: bool) -> io::Result<Self> {
        prime_iopoll_probe(path).await?;
        let mut opts = OpenOptions::new();
        opts.read(true).write(true);
        if write_through {
            opts.custom_flags(libc::O_DSYNC);
        }
        match mode {
            OpenMode::Existing => {}
            OpenMode::CreateOrOpen => {
                opts.create(true);
            }
            OpenMode::CreateNew => {
                opts.create_new(true);
            }
        }
        let inner = opts.dma_open(path).await.map_err(|e| {
            let e = to_io(e);
            if e.raw_os_error() == Some(libc::EINVAL) {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "{} does not support O_DIRECT (tmpfs?): put volumes on a block-device \
                         filesystem such as ext4 or xfs",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })?;
        Ok(RawFile {
            inner,
            write_through,
        })
    }

    pub(crate) async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        // We align ourselves rather than use glommio's `read_at`: at end of file it pads the
        // result with zeros up to the block boundary (glommio 0.9), which would hand callers
        // bytes that are not in the file.
        let align = crate::disk::ALIGN as u64;
        let start = pos / align * align;
        let skip = (pos - start) as usize;
        let span = crate::disk::align_up(skip + len);
        let r = self
            .inner
            .read_at_aligned(start, span)
            .await
            .map_err(to_io)?;
        let end = r.len().min(skip + len);
        Ok(if end > skip {
            r[skip..end].to_vec()
        } else {
            Vec::new()
        })
    }

    pub(crate) async fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        let mut buf = self.inner.alloc_dma_buffer(data.len());
        buf.as_bytes_mut().copy_from_slice(data);
        let n = self.inner.write_at(buf, pos).await.map_err(to_io)?;
        if n != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", data.len()),
            ));
        }
        Ok(())
    }

    pub(crate) async fn sync(&self) -> io::Result<()> {
        if self.write_through {
            return Ok(());
        }
        self.inner.fdatasync().await.map_err(to_io)
    }

    pub(crate) async fn preallocate(&self, len: u64) -> io::Result<()> {
        self.inner.pre_allocate(len, true).await.map_err(to_io)
    }

    pub(crate) async fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len).await.map_err(to_io)
    }

    pub(crate) async fn size(&self) -> io::Result<u64> {
        self.inner.file_size().await.map_err(to_io)
    }

    pub(crate) async fn close(self) -> io::Result<()> {
        self.inner.close().await.map_err(to_io)
    }
}

pub(crate) async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    glommio::io::rename(from, to).await.map_err(to_io)
}

pub(crate) async fn remove(path: &Path) -> io::Result<()> {
    glommio::io::remove(path).await.map_err(to_io)
}

pub(crate) async fn remove_dir(path: &Path) -> io::Result<()> {
    std::fs::remove_dir(path)
}

pub(crate) async fn create_dir_all(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

pub(crate) async fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        out.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

pub(crate) async fn exists(path: &Path) -> io::Result<bool> {
    path.try_exists()
}

pub(crate) async fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = glommio::io::Directory::open(dir).await.map_err(to_io)?;
    d.sync().await.map_err(to_io)?;
    d.close().await.map_err(to_io)
}

#[cfg(test)]
mod tests {
    use crate::disk::{File, OpenMode};

    /// The open flags of the descriptor this process has open on `path` (from /proc).
    fn open_flags(path: &std::path::Path) -> u32 {
        for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            if std::fs::read_link(fd.path()).ok().as_deref() == Some(path) {
                let info = std::fs::read_to_string(format!(
                    "/proc/self/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ))
                .unwrap();
                let flags = info
                    .lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .expect("fdinfo has flags");
                return u32::from_str_radix(flags.trim(), 8).unwrap();
            }
        }
        panic!("{} is not open", path.display());
    }

    #[test]
    fn write_through_files_are_opened_o_dsync() {
        // O_DIRECT needs a real filesystem: the target directory, not /tmp (tmpfs on some hosts).
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rt-write-through");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        crate::Runtime::new("write-through")
            .run(move |_s: crate::shard::Shard<()>| {
                let dir = dir.clone();
                async move {
                    let (a, b) = (dir.join("through"), dir.join("plain"));
                    let through = File::open_write_through(&a, OpenMode::CreateNew)
                        .await
                        .unwrap();
                    let plain = File::open(&b, OpenMode::CreateNew).await.unwrap();
                    let dsync = libc::O_DSYNC as u32;
                    assert_eq!(open_flags(&a) & dsync, dsync);
                    assert_eq!(open_flags(&b) & dsync, 0);
                    through
                        .write_at(0, &[1u8; crate::disk::ALIGN])
                        .await
                        .unwrap();
                    through.sync().await.unwrap();
                    assert_eq!(through.read_at(0, 4).await.unwrap(), vec![1u8; 4]);
                    through.close().await.unwrap();
                    plain.close().await.unwrap();
                }
            })
            .unwrap();
    }

    /// Executor threads of one process that open their first files in the same directory at
    /// the same moment each run the iopoll probe there; none may remove another's probe (which
    /// glommio 0.9 answers with a panic: an unwrapped ENOENT in its open).
    #[test]
    fn executors_opening_files_in_one_directory_at_once_all_succeed() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 8;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rt-probe-race");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let root = root.canonicalize().unwrap();
        for round in 0..ROUNDS {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (barrier, root) = (barrier.clone(), root.clone());
                    std::thread::spawn(move || {
                        crate::Runtime::new(format!("probe-{round}-{t}"))
                            .io_memory_bytes(512 << 10)
                            .run(move |_s: crate::shard::Shard<()>| {
                                let (barrier, root) = (barrier.clone(), root.clone());
                                async move {
                                    barrier.wait();
                                    let path = root.join(format!("f-{round}-{t}"));
                                    let f = File::open(&path, OpenMode::CreateNew).await.unwrap();
                                    f.close().await.unwrap();
                                }
                            })
                            .unwrap();
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("an executor panicked opening its file");
            }
        }
        let probes = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("iopoll-probe"))
            .count();
        assert_eq!(probes, 0, "every probe file is removed after use");
    }
}
