//! Start-up checks: can this process use io_uring, and is the locked-memory limit enough?
//!
//! glommio panics deep inside executor construction when io_uring is missing; we probe first
//! so the operator gets one message with the cause and the fix.

use crate::error::RtError;

/// Bytes of locked memory glommio needs per executor beyond `io_memory_bytes` (rings).
const RING_OVERHEAD_BYTES: u64 = 64 << 10;

pub(crate) fn check(shards: usize, io_memory_bytes: usize) -> Result<(), RtError> {
    probe_io_uring()?;
    check_memlock(shards, io_memory_bytes)
}

fn probe_io_uring() -> Result<(), RtError> {
    // struct io_uring_params is 120 bytes; zeroed is a valid request for a 1-entry ring.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes only the params struct we pass, which is large
    // enough; on success we own the returned fd and close it.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: fd is a valid descriptor we just received.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    let (cause, fix) = match err.raw_os_error() {
        Some(libc::ENOSYS) => (
            "the kernel does not implement io_uring_setup (ENOSYS)".to_string(),
            "run on Linux 5.10 or newer with CONFIG_IO_URING enabled".to_string(),
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => (
            format!("io_uring_setup was refused ({err})"),
            "allow io_uring: set sysctl kernel.io_uring_disabled=0, and if running in a container \
             use a seccomp profile that permits io_uring_setup/io_uring_enter/io_uring_register \
             (e.g. docker --security-opt seccomp=unconfined)"
                .to_string(),
        ),
        Some(libc::ENOMEM) => (
            format!("io_uring_setup could not allocate its rings ({err})"),
            "raise the locked-memory limit (ulimit -l) or free memory".to_string(),
        ),
        _ => (
            format!("io_uring_setup failed ({err})"),
            "check the kernel version (5.10+) and any seccomp or sysctl restriction".to_string(),
        ),
    };
    Err(RtError::IoUringUnavailable { cause, fix })
}

fn check_memlock(shards: usize, io_memory_bytes: usize) -> Result<(), RtError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Ok(()); // cannot tell; let glommio try
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        return Ok(());
    }
    let needed = shards as u64 * (io_memory_bytes as u64 + RING_OVERHEAD_BYTES);
    if lim.rlim_cur < needed {
        return Err(RtError::MemlockTooLow {
            limit_bytes: lim.rlim_cur,
            needed_bytes: needed,
            needed_kib: needed.div_ceil(1024),
            shards,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn memlock_math_names_the_fix() {
        // 10 000 shards of 1 MiB can never fit in any sane limit.
        // Ok only with an unlimited memlock (e.g. some containers): nothing to check then.
        if let Err(e) = super::check_memlock(10_000, 1 << 20) {
            let msg = e.to_string();
            assert!(msg.contains("ulimit -l"), "{msg}");
            assert_eq!(e.code(), "RT-002");
        }
    }
}
