//! Where a node's storage lives on disk.
//!
//! Invariant: the layout matches DolphinDB's, so the tutorial's backup and rollback steps
//! (`cp -r CHUNK_METADATA dataBackup`, `cp -r raft controllerBackup`) work unchanged:
//!
//! ```text
//! <home>/<alias>/storage/                default volume of a data node
//! <home>/<alias>/storage/CHUNK_METADATA  chunk metadata (unless chunkMetaDir is set)
//! <home>/<alias>/raft                    controller Raft log and snapshots
//! <home>/<alias>/dfsMeta                 controller DFS metadata checkpoints (unless dfsMetaDir)
//! ```

use std::path::{Path, PathBuf};

/// Name of the chunk metadata directory inside a volume or `chunkMetaDir`.
pub const CHUNK_METADATA_DIR: &str = "CHUNK_METADATA";

/// The node's own directory under `home`.
pub fn node_dir(home: &Path, alias: &str) -> PathBuf {
    home.join(alias)
}

/// The default volume when `volumes` is not configured.
pub fn default_volume(home: &Path, alias: &str) -> PathBuf {
    node_dir(home, alias).join("storage")
}

/// The default chunk metadata directory when `chunkMetaDir` is not configured.
pub fn default_chunk_meta_dir(home: &Path, alias: &str) -> PathBuf {
    default_volume(home, alias).join(CHUNK_METADATA_DIR)
}

/// The controller's Raft directory.
pub fn raft_dir(home: &Path, alias: &str) -> PathBuf {
    node_dir(home, alias).join("raft")
}

/// The default DFS metadata directory when `dfsMetaDir` is not configured.
pub fn default_dfs_meta_dir(home: &Path, alias: &str) -> PathBuf {
    node_dir(home, alias).join("dfsMeta")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_tutorial() {
        let home = Path::new("/DolphinDB/server/clusterDemo/data");
        assert_eq!(
            default_chunk_meta_dir(home, "datanode1"),
            Path::new("/DolphinDB/server/clusterDemo/data/datanode1/storage/CHUNK_METADATA")
        );
        assert_eq!(
            raft_dir(home, "controller1"),
            Path::new("/DolphinDB/server/clusterDemo/data/controller1/raft")
        );
    }
}
