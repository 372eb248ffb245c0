//! The background scrub: every block of every chunk this data node holds is read back from the
//! disk and checked against its checksum, a while after the node starts and then once per
//! [`SCRUB_PASS_INTERVAL`], so a replica damaged where no query reads (bits flipped while the
//! node was down, a sector gone bad on a cold partition) is found and repaired from a good one
//! (D101's path: reported to the leader, marked stale, copied back) before its partner is lost
//! too — not only when a read happens to land on it (D106).
//!
//! Invariants: the scrub never reads faster than [`SCRUB_BYTES_PER_SEC`] on average, so queries
//! and appends keep the disk; it only reads (a chunk found damaged is marked by the engine and
//! reported, never changed here); a chunk is reported once until it is repaired
//! (`check_damage`'s own rule).

use std::rc::Rc;
use std::time::Duration;

use super::DataNodeService;

/// The first pass starts this long after the node does: after it has announced itself, while
/// a restart's damage (the likeliest moment for it) is fresh.
pub const SCRUB_START_DELAY: Duration = Duration::from_secs(5);
/// A pass starts at most this often.
pub const SCRUB_PASS_INTERVAL: Duration = Duration::from_secs(3600);
/// The scrub's average read rate.
pub const SCRUB_BYTES_PER_SEC: u64 = 64 << 20;

impl DataNodeService {
    /// Scrubs this node's chunks until the process ends. Spawned by the start function.
    pub async fn scrub(self: Rc<Self>) {
        rt::time::sleep(SCRUB_START_DELAY).await;
        // Damage is reported under the node's alias, known once it has announced itself.
        while self.alias.get().is_none() {
            rt::time::sleep(SCRUB_START_DELAY).await;
        }
        loop {
            let started = rt::time::now();
            for chunk in self.engine.chunks() {
                let Ok(info) = self.engine.chunk_info(chunk) else {
                    continue; // dropped meanwhile
                };
                self.check_damage([chunk]).await;
                super::bump(&self.stats.scrubbed_chunks, 1);
                // Paced by the bytes just read.
                let pause_ms = info.disk_bytes.saturating_mul(1000) / SCRUB_BYTES_PER_SEC;
                if pause_ms > 0 {
                    rt::time::sleep(Duration::from_millis(pause_ms)).await;
                }
            }
            super::bump(&self.stats.scrub_passes, 1);
            let next = started + SCRUB_PASS_INTERVAL;
            let now = rt::time::now();
            if next > now {
                rt::time::sleep(next - now).await;
            }
        }
    }
}
