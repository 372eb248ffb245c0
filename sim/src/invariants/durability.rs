//! Invariant: **synced data survives a crash.**
//!
//! A writer appends fixed-size records to a file and syncs after some of them, reporting the
//! highest record it knows to be durable. After a crash and restart the file must hold every
//! record up to that mark, byte for byte. Records after it may be missing or torn — but a
//! record that is present and *claims* to be record `i` (its checksum matches) must be the
//! record written as `i`: the disk may lose data, never invent it.

/// Size of one record (one disk block, so a record is written with one aligned write).
pub const RECORD_BYTES: usize = 4096;

/// The record written as number `i`: its index, a checksum, and a body derived from `i`.
pub fn record(i: u64) -> Vec<u8> {
    let mut r = vec![0u8; RECORD_BYTES];
    r[..8].copy_from_slice(&i.to_le_bytes());
    for (j, b) in r[16..].iter_mut().enumerate() {
        *b = (i as usize).wrapping_mul(31).wrapping_add(j) as u8;
    }
    let sum = checksum(&r[16..]) ^ i;
    r[8..16].copy_from_slice(&sum.to_le_bytes());
    r
}

fn checksum(body: &[u8]) -> u64 {
    // FNV-1a: enough to tell a whole record from a torn or zeroed one.
    body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Decodes a record: `Some(i)` when it is intact.
pub fn decode(r: &[u8]) -> Option<u64> {
    if r.len() != RECORD_BYTES {
        return None;
    }
    let i = u64::from_le_bytes(r[..8].try_into().ok()?);
    let sum = u64::from_le_bytes(r[8..16].try_into().ok()?);
    (checksum(&r[16..]) ^ i == sum).then_some(i)
}

/// Checks the file contents against the durable mark: `durable` records (0..durable) must be
/// present and intact; any intact record must sit at its own index.
pub fn check(file: &[u8], durable: u64) -> Result<(), String> {
    for (pos, chunk) in file.chunks(RECORD_BYTES).enumerate() {
        let pos = pos as u64;
        match decode(chunk) {
            Some(i) if i != pos => return Err(format!("record {i} found at position {pos}")),
            Some(_) => {}
            None if pos < durable => return Err(format!("synced record {pos} is torn or missing")),
            None => {}
        }
    }
    let present = (file.len() / RECORD_BYTES) as u64;
    if present < durable {
        return Err(format!(
            "only {present} records survived but {durable} were synced"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intact_records_pass_and_lost_synced_ones_fail() {
        let mut file: Vec<u8> = (0..4).flat_map(record).collect();
        assert_eq!(check(&file, 4), Ok(()));
        // An unsynced tail may be torn.
        file.extend(vec![0u8; RECORD_BYTES]);
        assert_eq!(check(&file, 4), Ok(()));
        // A synced record may not be.
        file[RECORD_BYTES + 100] ^= 1;
        assert!(check(&file, 4).unwrap_err().contains("synced record 1"));
        // Nor may synced records be missing.
        let short: Vec<u8> = (0..2).flat_map(record).collect();
        assert!(check(&short, 3).is_err());
        // Nor may a record appear where it was not written.
        let swapped: Vec<u8> = [record(1), record(0)].concat();
        assert!(check(&swapped, 0).is_err());
    }
}
