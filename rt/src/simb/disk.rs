//! `SimDisk`: the simulated disk of every madsim node, registered as a madsim plugin.
//!
//! Model (what survives a crash, i.e. `Handle::kill`/`restart` of a node or
//! [`SimDisk::crash`]):
//! - A file's bytes are durable as of its last [`sync`](crate::disk::File::sync), or its last
//!   write if it was opened write-through (which makes all earlier ones durable too). Writes since
//!   then are each, independently and by the seeded RNG, kept, lost, or *torn* (a random prefix
//!   of its 4 KiB sectors kept). Truncations since the last sync are kept or lost likewise.
//! - A directory entry (file creation, rename, removal) is durable as of the last
//!   [`sync_dir`](crate::disk::sync_dir) of its parent directory; otherwise a crash reverts it
//!   (a created file vanishes, a rename is undone, a removed file comes back).
//! - Directories themselves are durable at once (a simplification; nothing in Porpoise relies
//!   on a directory disappearing).
//!
//! Faults injected while running, each drawn from the seeded RNG and bounded by
//! [`DiskFaults::faults_max`] per node:
//! - bit flips in data returned by reads (the stored bytes stay intact);
//! - EIO on read, write or sync;
//! - disk full (`StorageFull`) once the node's bytes exceed `capacity_bytes`.
//!
//! Handles opened before a crash are dead afterwards: every call on them fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use madsim::plugin::{self, Simulator};
use madsim::rand::{GlobalRng, RngCore};
use madsim::task::NodeId;

use crate::disk::{OpenMode, ALIGN};

/// Fault settings of one node's disk. The default injects nothing while running but applies
/// the crash model (lose/tear unsynced writes) on kill.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskFaults {
    /// Chance that a read returns data with one bit flipped.
    pub read_bitflip_chance: f64,
    /// Chance that a read fails with EIO.
    pub read_eio_chance: f64,
    /// Chance that a write fails with EIO (nothing is written).
    pub write_eio_chance: f64,
    /// Chance that a sync fails with EIO (nothing becomes durable).
    pub sync_eio_chance: f64,
    /// Total file bytes this node may hold; beyond it writes fail with `StorageFull`.
    pub capacity_bytes: Option<u64>,
    /// Whether a crash tears unsynced writes (else each is wholly kept or lost).
    pub tear_on_crash: bool,
    /// At most this many running faults (bit flips, EIO) are injected; then the disk behaves.
    pub faults_max: u32,
}

impl Default for DiskFaults {
    fn default() -> Self {
        DiskFaults {
            read_bitflip_chance: 0.0,
            read_eio_chance: 0.0,
            write_eio_chance: 0.0,
            sync_eio_chance: 0.0,
            capacity_bytes: None,
            tear_on_crash: true,
            faults_max: 64,
        }
    }
}

/// Counters of what the disk did to a node, for assertions in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub bitflips: u32,
    pub eio: u32,
    pub full: u32,
    pub crashes: u32,
    pub writes_lost: u32,
    pub writes_torn: u32,
    pub syncs: u64,
}

type FileId = u64;

enum Op {
    Write { pos: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

#[derive(Default)]
struct SimFile {
    data: Vec<u8>,
    /// Content as of the last sync; `None` while nothing is unsynced (then equal to `data`).
    durable: Option<Vec<u8>>,
    unsynced: Vec<Op>,
}

struct NodeDisk {
    /// Bumped on every crash; handles from an older epoch are dead.
    epoch: u64,
    next_id: FileId,
    /// Ordered: the crash model draws from the simulation RNG file by file, and a HashMap's
    /// order changes between runs in one thread (std seeds hash keys once per thread), which
    /// broke replay of seed 11 once controllers kept files.
    files: BTreeMap<FileId, SimFile>,
    names: BTreeMap<PathBuf, FileId>,
    durable_names: BTreeMap<PathBuf, FileId>,
    dirs: BTreeSet<PathBuf>,
    faults: DiskFaults,
    faults_used: u32,
    stats: DiskStats,
}

impl Default for NodeDisk {
    fn default() -> Self {
        NodeDisk {
            epoch: 0,
            next_id: 0,
            files: BTreeMap::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            dirs: BTreeSet::from([PathBuf::from("/")]),
            faults: DiskFaults::default(),
            faults_used: 0,
            stats: DiskStats::default(),
        }
    }
}

impl NodeDisk {
    fn used_bytes(&self) -> u64 {
        self.files.values().map(|f| f.data.len() as u64).sum()
    }

    fn parent_exists(&self, path: &Path) -> bool {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => self.dirs.contains(p),
            _ => true,
        }
    }
}

/// The simulated disks of all nodes. Obtain it with [`SimDisk::current`].
pub struct SimDisk {
    rng: GlobalRng,
    nodes: Mutex<HashMap<NodeId, NodeDisk>>,
}

impl Simulator for SimDisk {
    fn new(rand: &GlobalRng, _time: &madsim::time::TimeHandle, _config: &madsim::Config) -> Self {
        SimDisk {
            rng: rand.clone(),
            nodes: Mutex::new(HashMap::new()),
        }
    }

    fn create_node(&self, id: NodeId) {
        self.nodes.lock().unwrap().insert(id, NodeDisk::default());
    }

    fn reset_node(&self, id: NodeId) {
        // madsim calls this when a node is killed or restarted: a power failure for its disk.
        self.crash(id);
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

fn eio(what: &str, path: &Path) -> io::Error {
    io::Error::other(format!("simulated EIO during {what} of {}", path.display()))
}

impl SimDisk {
    /// The simulation's disk plugin.
    pub fn current() -> Arc<SimDisk> {
        plugin::simulator::<SimDisk>()
    }

    fn rand_u64(&self) -> u64 {
        self.rng.clone().next_u64()
    }

    fn chance(&self, p: f64) -> bool {
        p > 0.0 && (self.rand_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn with_node<T>(&self, node: NodeId, f: impl FnOnce(&mut NodeDisk) -> T) -> T {
        let mut nodes = self.nodes.lock().unwrap();
        let disk = nodes.entry(node).or_default();
        f(disk)
    }

    /// Sets the fault settings of `node`'s disk.
    pub fn set_faults(&self, node: NodeId, faults: DiskFaults) {
        self.with_node(node, |d| {
            d.faults = faults;
            d.faults_used = 0;
        });
    }

    /// Sets the fault settings of the calling node's disk.
    pub fn set_faults_here(&self, faults: DiskFaults) {
        self.set_faults(plugin::node(), faults)
    }

    /// What the disk of `node` has done so far.
    pub fn stats(&self, node: NodeId) -> DiskStats {
        self.with_node(node, |d| d.stats.clone())
    }

    /// Stats of the calling node's disk.
    pub fn stats_here(&self) -> DiskStats {
        self.stats(plugin::node())
    }

    /// Removes every file and directory under `dir` on `node`'s disk, durably, as an operator's
    /// `rm -rf` on a stopped machine (or a replaced disk) does. Call it on a killed host.
    pub fn wipe_dir(&self, node: NodeId, dir: &Path) {
        self.with_node(node, |d| {
            let gone: Vec<PathBuf> = d
                .names
                .keys()
                .filter(|p| p.starts_with(dir))
                .cloned()
                .collect();
            for p in gone {
                if let Some(id) = d.names.remove(&p) {
                    d.files.remove(&id);
                }
                d.durable_names.remove(&p);
            }
            d.durable_names.retain(|p, _| !p.starts_with(dir));
            d.dirs.retain(|p| !p.starts_with(dir));
        });
    }

    /// The paths of the files on `node`'s disk under `dir`, with their sizes.
    pub fn files_under(&self, node: NodeId, dir: &Path) -> Vec<(PathBuf, u64)> {
        self.with_node(node, |d| {
            d.names
                .iter()
                .filter(|(p, _)| p.starts_with(dir))
                .map(|(p, id)| (p.clone(), d.files[id].data.len() as u64))
                .collect()
        })
    }

    /// Flips `mask` in the byte at `offset` of the file at `path` on `node`'s disk, in its
    /// durable contents too: a bit rotting on a synced sector. False if there is no such byte.
    pub fn flip_byte(&self, node: NodeId, path: &Path, offset: u64, mask: u8) -> bool {
        self.with_node(node, |d| {
            let Some(id) = d.names.get(path).copied() else {
                return false;
            };
            let f = d.files.get_mut(&id).expect("named files exist");
            let at = offset as usize;
            if at >= f.data.len() {
                return false;
            }
            f.data[at] ^= mask;
            if let Some(durable) = f.durable.as_mut() {
                if at < durable.len() {
                    durable[at] ^= mask;
                }
            }
            true
        })
    }

    /// Applies the crash model to the calling node's disk without killing its tasks (for
    /// storage tests that drop their engine, "crash", and reopen).
    pub fn crash_here(&self) {
        self.crash(plugin::node())
    }

    /// Applies the crash model to `node`'s disk: unsynced data is kept, lost or torn; unsynced
    /// directory entries revert; every open handle dies.
    pub fn crash(&self, node: NodeId) {
        let mut nodes = self.nodes.lock().unwrap();
        let Some(d) = nodes.get_mut(&node) else {
            return;
        };
        d.epoch += 1;
        d.stats.crashes += 1;
        d.names = d.durable_names.clone();
        let live: BTreeSet<FileId> = d.names.values().copied().collect();
        d.files.retain(|id, _| live.contains(id));
        let tear = d.faults.tear_on_crash;
        let mut lost = 0;
        let mut torn = 0;
        for f in d.files.values_mut() {
            let Some(mut content) = f.durable.take() else {
                continue;
            };
            for op in f.unsynced.drain(..) {
                let roll = self.rand_u64();
                match op {
                    Op::Truncate { len } => {
                        if roll % 2 == 0 {
                            content.resize(len as usize, 0);
                        }
                    }
                    Op::Write { pos, data } => {
                        let sectors = data.len().div_ceil(ALIGN);
                        let keep = match roll % 3 {
                            0 => sectors,
                            1 => {
                                lost += 1;
                                0
                            }
                            _ if tear && sectors > 1 => {
                                torn += 1;
                                (self.rand_u64() % sectors as u64) as usize
                            }
                            _ => {
                                lost += 1;
                                0
                            }
                        };
                        let bytes = (keep * ALIGN).min(data.len());
                        if bytes > 0 {
                            let end = pos as usize + bytes;
                            if content.len() < end {
                                content.resize(end, 0);
                            }
                            content[pos as usize..end].copy_from_slice(&data[..bytes]);
                        }
                    }
                }
            }
            f.data = content;
        }
        d.stats.writes_lost += lost;
        d.stats.writes_torn += torn;
    }

    fn take_fault(&self, d: &mut NodeDisk, p: f64) -> bool {
        if d.faults_used >= d.faults.faults_max || !self.chance(p) {
            return false;
        }
        d.faults_used += 1;
        true
    }
}

/// A handle to a file on the calling node's SimDisk.
pub(crate) struct RawFile {
    node: NodeId,
    epoch: u64,
    id: FileId,
    path: PathBuf,
    /// Every completed write is durable at once (O_DSYNC).
    write_through: bool,
}

impl RawFile {
    fn with_file<T>(
        &self,
        f: impl FnOnce(&SimDisk, &mut NodeDisk, FileId) -> io::Result<T>,
    ) -> io::Result<T> {
        let disk = SimDisk::current();
        let mut nodes = disk.nodes.lock().unwrap();
        let d = nodes
            .get_mut(&self.node)
            .ok_or_else(|| not_found(&self.path))?;
        if d.epoch != self.epoch || !d.files.contains_key(&self.id) {
            return Err(io::Error::other(format!(
                "{}: handle is stale (the node crashed or the file was removed)",
                self.path.display()
            )));
        }
        f(&disk, d, self.id)
    }

    pub(crate) async fn open(path: &Path, mode: OpenMode, write_through: bool) -> io::Result<Self> {
        let disk = SimDisk::current();
        let node = plugin::node();
        disk.with_node(node, |d| {
            let existing = d.names.get(path).copied();
            let id = match (existing, mode) {
                (Some(_), OpenMode::CreateNew) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} already exists", path.display()),
                    ))
                }
                (Some(id), _) => id,
                (None, OpenMode::Existing) => return Err(not_found(path)),
                (None, _) => {
                    if !d.parent_exists(path) {
                        return Err(not_found(path.parent().unwrap_or(path)));
                    }
                    let id = d.next_id;
                    d.next_id += 1;
                    d.files.insert(id, SimFile::default());
                    d.names.insert(path.to_path_buf(), id);
                    id
                }
            };
            Ok(RawFile {
                node,
                epoch: d.epoch,
                id,
                path: path.to_path_buf(),
                write_through,
            })
        })
    }

    pub(crate) async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        self.with_file(|disk, d, id| {
            let p = d.faults.read_eio_chance;
            if disk.take_fault(d, p) {
                d.stats.eio += 1;
                return Err(eio("read", &self.path));
            }
            let data = &d.files[&id].data;
            let start = (pos as usize).min(data.len());
            let end = (start + len).min(data.len());
            let mut out = data[start..end].to_vec();
            let p = d.faults.read_bitflip_chance;
            if !out.is_empty() && disk.take_fault(d, p) {
                let bit = disk.rand_u64() % (out.len() as u64 * 8);
                out[(bit / 8) as usize] ^= 1 << (bit % 8);
                d.stats.bitflips += 1;
            }
            Ok(out)
        })
    }

    pub(crate) async fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        self.with_file(|disk, d, id| {
            let p = d.faults.write_eio_chance;
            if disk.take_fault(d, p) {
                d.stats.eio += 1;
                return Err(eio("write", &self.path));
            }
            let end = pos as usize + data.len();
            let growth = end.saturating_sub(d.files[&id].data.len()) as u64;
            if let Some(cap) = d.faults.capacity_bytes {
                if d.used_bytes() + growth > cap {
                    d.stats.full += 1;
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        format!("simulated disk full writing {}", self.path.display()),
                    ));
                }
            }
            let f = d.files.get_mut(&id).expect("checked by with_file");
            if f.durable.is_none() && !self.write_through {
                f.durable = Some(f.data.clone());
            }
            if f.data.len() < end {
                f.data.resize(end, 0);
            }
            f.data[pos as usize..end].copy_from_slice(data);
            if self.write_through {
                // Durable on completion, with everything before it.
                d.stats.syncs += 1;
                f.durable = None;
                f.unsynced.clear();
            } else {
                f.unsynced.push(Op::Write {
                    pos,
                    data: data.to_vec(),
                });
            }
            Ok(())
        })
    }

    pub(crate) async fn sync(&self) -> io::Result<()> {
        if self.write_through {
            return self.with_file(|_, _, _| Ok(()));
        }
        self.with_file(|disk, d, id| {
            let p = d.faults.sync_eio_chance;
            if disk.take_fault(d, p) {
                d.stats.eio += 1;
                return Err(eio("sync", &self.path));
            }
            d.stats.syncs += 1;
            let f = d.files.get_mut(&id).expect("checked by with_file");
            f.durable = None;
            f.unsynced.clear();
            Ok(())
        })
    }

    pub(crate) async fn preallocate(&self, _len: u64) -> io::Result<()> {
        self.with_file(|_, _, _| Ok(()))
    }

    pub(crate) async fn truncate(&self, len: u64) -> io::Result<()> {
        self.with_file(|_, d, id| {
            let f = d.files.get_mut(&id).expect("checked by with_file");
            if f.durable.is_none() {
                f.durable = Some(f.data.clone());
            }
            f.data.resize(len as usize, 0);
            f.unsynced.push(Op::Truncate { len });
            Ok(())
        })
    }

    pub(crate) async fn size(&self) -> io::Result<u64> {
        self.with_file(|_, d, id| Ok(d.files[&id].data.len() as u64))
    }

    pub(crate) async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

fn here<T>(f: impl FnOnce(&mut NodeDisk) -> io::Result<T>) -> io::Result<T> {
    SimDisk::current().with_node(plugin::node(), f)
}

pub(crate) async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    here(|d| {
        let id = d.names.remove(from).ok_or_else(|| not_found(from))?;
        if !d.parent_exists(to) {
            d.names.insert(from.to_path_buf(), id);
            return Err(not_found(to.parent().unwrap_or(to)));
        }
        if let Some(old) = d.names.insert(to.to_path_buf(), id) {
            // The replaced file lives on only if a durable name still points at it.
            if !d.durable_names.values().any(|v| *v == old) {
                d.files.remove(&old);
            }
        }
        Ok(())
    })
}

pub(crate) async fn remove(path: &Path) -> io::Result<()> {
    here(|d| {
        if let Some(id) = d.names.remove(path) {
            if !d.durable_names.values().any(|v| *v == id) {
                d.files.remove(&id);
            }
            return Ok(());
        }
        if d.dirs.contains(path) {
            let busy = d.names.keys().any(|p| p.starts_with(path))
                || d.dirs.iter().any(|p| p != path && p.starts_with(path));
            if busy {
                return Err(io::Error::new(
                    io::ErrorKind::DirectoryNotEmpty,
                    format!("{} is not empty", path.display()),
                ));
            }
            d.dirs.remove(path);
            return Ok(());
        }
        Err(not_found(path))
    })
}

pub(crate) async fn remove_dir(path: &Path) -> io::Result<()> {
    let is_dir = here(|d| Ok(d.dirs.contains(path)))?;
    if !is_dir {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", path.display()),
        ));
    }
    remove(path).await
}

pub(crate) async fn create_dir_all(path: &Path) -> io::Result<()> {
    here(|d| {
        for anc in path.ancestors() {
            if !anc.as_os_str().is_empty() {
                d.dirs.insert(anc.to_path_buf());
            }
        }
        Ok(())
    })
}

pub(crate) async fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    here(|d| {
        if !d.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let files = d.names.keys().filter(|p| p.parent() == Some(dir));
        let dirs = d.dirs.iter().filter(|p| p.parent() == Some(dir));
        Ok(files
            .chain(dirs)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    })
}

pub(crate) async fn exists(path: &Path) -> io::Result<bool> {
    here(|d| Ok(d.names.contains_key(path) || d.dirs.contains(path)))
}

pub(crate) async fn sync_dir(dir: &Path) -> io::Result<()> {
    here(|d| {
        if !d.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        d.durable_names.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<(PathBuf, FileId)> = d
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        d.durable_names.extend(entries);
        // Files no longer reachable from any name are gone for good.
        let live: BTreeSet<FileId> = d
            .names
            .values()
            .chain(d.durable_names.values())
            .copied()
            .collect();
        d.files.retain(|id, _| live.contains(id));
        Ok(())
    })
}
