//! Storage errors, each with a stable code (`STO-xxx`) and a message that says what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("STO-001 I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A block or metadata record failed its checks: the chunk must be repaired from a replica.
    #[error("STO-002 chunk {chunk} is corrupt: {file}{at}: {reason}. Repair it from a replica", at = offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    Corrupt {
        chunk: u64,
        file: PathBuf,
        offset: Option<u64>,
        reason: String,
    },
    #[error("STO-003 chunk {0} does not exist")]
    NoSuchChunk(u64),
    #[error("STO-004 chunk {0} already exists")]
    ChunkExists(u64),
    /// The chunk is held by an unresolved transaction (DolphinDB's `<ChunkInTransaction>`).
    #[error("STO-005 <ChunkInTransaction> chunk {chunk} is in transaction {tid}")]
    ChunkInTransaction { chunk: u64, tid: u64 },
    #[error("STO-006 transaction {0} is not prepared here")]
    NoSuchTransaction(u64),
    #[error("STO-007 invalid batch for chunk {chunk}: {reason}")]
    BadBatch { chunk: u64, reason: String },
    #[error("STO-008 {0}")]
    TooLarge(String),
    /// A previous log write failed; nothing more can be acknowledged until the node restarts.
    #[error("STO-009 the redo log failed earlier ({0}); restart the node to recover")]
    LogFailed(String),
    #[error("STO-010 unsupported format: {0}")]
    Format(String),
    #[error("STO-011 chunk {chunk} is at version {actual}, not {wanted}")]
    VersionMismatch {
        chunk: u64,
        wanted: u64,
        actual: u64,
    },
    /// The rows of `wanted` were flushed into one segment with later commits (through
    /// `through`): this replica cannot show that version exactly; another may.
    #[error("STO-012 chunk {chunk}'s version {wanted} was flushed together with later commits (through version {through}); read it from another replica or at a later version")]
    VersionCompacted {
        chunk: u64,
        wanted: u64,
        through: u64,
    },
}

/// Why a file of format `found` is refused by a build that reads format `reads`, and what to
/// do (the tutorial's upgrade rollback, FAQ Q4): the one wording every file format's check
/// uses. Callers put the file's name in front.
pub fn format_refusal(what: &str, found: u32, reads: u32) -> String {
    let way = if found > reads {
        "it was written by a newer Porpoise: run that version again, or roll the upgrade back \
         by restoring the backup taken before it"
    } else {
        "it was written by an older Porpoise whose format this build no longer reads: start \
         that version, or restore the file from a backup"
    };
    format!("{what} format {found}, but this build reads format {reads}; {way}")
}

impl StorageError {
    /// A file in a format this build does not read: refused with the file, both formats and
    /// what to do ([`format_refusal`]), never guessed at or repaired.
    pub fn unsupported(file: &std::path::Path, what: &str, found: u32, reads: u32) -> StorageError {
        StorageError::Format(format!(
            "{}: {}",
            file.display(),
            format_refusal(what, found, reads)
        ))
    }

    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Io(_) => "STO-001",
            StorageError::Corrupt { .. } => "STO-002",
            StorageError::NoSuchChunk(_) => "STO-003",
            StorageError::ChunkExists(_) => "STO-004",
            StorageError::ChunkInTransaction { .. } => "STO-005",
            StorageError::NoSuchTransaction(_) => "STO-006",
            StorageError::BadBatch { .. } => "STO-007",
            StorageError::TooLarge(_) => "STO-008",
            StorageError::LogFailed(_) => "STO-009",
            StorageError::Format(_) => "STO-010",
            StorageError::VersionMismatch { .. } => "STO-011",
            StorageError::VersionCompacted { .. } => "STO-012",
        }
    }
}
