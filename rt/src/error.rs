//! Errors raised by the runtime itself (start-up and shard plumbing). Net and disk calls return
//! `std::io::Error`, which already carries an `ErrorKind` every caller understands.

/// A runtime error with a stable code (`RT-xxx`) and a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RtError {
    /// io_uring cannot be used on this machine.
    #[error("RT-001 io_uring is unavailable: {cause}. Fix: {fix}")]
    IoUringUnavailable { cause: String, fix: String },
    /// `RLIMIT_MEMLOCK` is below what the executors need for their io_uring buffers.
    #[error(
        "RT-002 locked-memory limit too low: {limit_bytes} bytes available, {needed_bytes} needed \
         for {shards} shard(s). Fix: raise it with `ulimit -l {needed_kib}` (or LimitMEMLOCK= in \
         the systemd unit), or start fewer shards"
    )]
    MemlockTooLow {
        limit_bytes: u64,
        needed_bytes: u64,
        needed_kib: u64,
        shards: usize,
    },
    /// An executor thread could not be spawned or panicked.
    #[error("RT-003 shard {shard} failed: {message}")]
    ShardFailed { shard: usize, message: String },
    /// The runtime was configured with an invalid value.
    #[error("RT-004 invalid runtime configuration: {0}")]
    InvalidConfig(String),
}

impl RtError {
    /// The stable code of this error, e.g. `"RT-001"`.
    pub fn code(&self) -> &'static str {
        match self {
            RtError::IoUringUnavailable { .. } => "RT-001",
            RtError::MemlockTooLow { .. } => "RT-002",
            RtError::ShardFailed { .. } => "RT-003",
            RtError::InvalidConfig(_) => "RT-004",
        }
    }
}
