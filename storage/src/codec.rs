//! Column blocks: one column's values for a run of rows, encoded (plain, dictionary, delta or
//! run-length — whichever is smallest), then zstd-compressed, with a checksummed header.
//!
//! Block layout (all integers little-endian; documented in docs/FORMAT.md):
//!
//! ```text
//! 0  u32 magic "PBLK"      12 u32 raw_len     (encoded bytes before zstd)
//! 4  u8  format (1)        16 u32 stored_len  (payload bytes after zstd)
//! 5  u8  encoding          20 u32 payload_crc (crc32 of the stored payload)
//! 6  u8  physical type     24 u32 header_crc  (crc32 of bytes 0..24)
//! 7  u8  compression       28 payload
//!        (0 zstd, 1 none)
//! 8  u32 rows
//! ```
//!
//! Invariants: the header is checked right after encoding (before the block is written) and
//! again after reading; the payload crc is checked before decompressing; every length read from
//! a block is bounded, so corrupt or hostile bytes yield an error, never a panic or a huge
//! allocation. SYMBOL blocks hold codes only — the symbol base lives in the chunk metadata.

use std::sync::Arc;

use crate::bytes::{DecodeError, Reader, Writer};
use crate::column::{Column, ColumnData, SymbolBase};
use crate::types::{DataType, Physical};

pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"PBLK");
pub const BLOCK_FORMAT: u8 = 1;
pub const BLOCK_HEADER_BYTES: usize = 28;
/// Most rows in one block.
pub const BLOCK_ROWS_MAX: usize = 1 << 20;
/// Largest encoded (pre-zstd) payload of one block.
pub const BLOCK_RAW_BYTES_MAX: usize = 64 << 20;
/// zstd level used for blocks: fast to write, still small.
pub const ZSTD_LEVEL: i32 = 3;
/// Dictionary encoding is tried up to this many distinct values.
const DICT_VALUES_MAX: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    Plain = 0,
    Dict = 1,
    Delta = 2,
    Rle = 3,
}

impl Encoding {
    fn from_u8(v: u8) -> Option<Encoding> {
        [
            Encoding::Plain,
            Encoding::Dict,
            Encoding::Delta,
            Encoding::Rle,
        ]
        .into_iter()
        .find(|e| *e as u8 == v)
    }
}

fn physical_id(p: Physical) -> u8 {
    match p {
        Physical::I8 => 1,
        Physical::I16 => 2,
        Physical::I32 => 3,
        Physical::I64 => 4,
        Physical::F32 => 5,
        Physical::F64 => 6,
        Physical::Symbol => 7,
        Physical::Bytes => 8,
    }
}

/// A decoded, verified block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub encoding: Encoding,
    /// Whether the payload is zstd-compressed (else stored as encoded).
    pub compressed: bool,
    pub physical: u8,
    pub rows: u32,
    pub raw_len: u32,
    pub stored_len: u32,
    pub payload_crc: u32,
}

impl BlockHeader {
    /// Total bytes of the block on disk.
    pub fn total_len(&self) -> usize {
        BLOCK_HEADER_BYTES + self.stored_len as usize
    }
}

/// Why a block could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block header is corrupt: {0}")]
    Header(String),
    #[error("block payload checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("block payload is malformed: {0}")]
    Payload(String),
}

impl From<DecodeError> for BlockError {
    fn from(e: DecodeError) -> Self {
        BlockError::Payload(e.to_string())
    }
}

/// Parses and verifies a block header (magic, format, header crc, bounds).
pub fn read_header(bytes: &[u8]) -> Result<BlockHeader, BlockError> {
    if bytes.len() < BLOCK_HEADER_BYTES {
        return Err(BlockError::Header(format!(
            "{} bytes, need {BLOCK_HEADER_BYTES}",
            bytes.len()
        )));
    }
    let mut r = Reader::new(&bytes[..BLOCK_HEADER_BYTES]);
    let magic = r.u32()?;
    if magic != BLOCK_MAGIC {
        return Err(BlockError::Header(format!("bad magic {magic:#010x}")));
    }
    let format = r.u8()?;
    let encoding = r.u8()?;
    let physical = r.u8()?;
    let compression = r.u8()?;
    let rows = r.u32()?;
    let raw_len = r.u32()?;
    let stored_len = r.u32()?;
    let payload_crc = r.u32()?;
    let header_crc = r.u32()?;
    let computed = crc32fast::hash(&bytes[..24]);
    if header_crc != computed {
        return Err(BlockError::Header(format!(
            "header crc {header_crc:#010x} != {computed:#010x}"
        )));
    }
    if format != BLOCK_FORMAT {
        return Err(BlockError::Header(format!(
            "block format {format} is not supported (this build reads format {BLOCK_FORMAT})"
        )));
    }
    let encoding = Encoding::from_u8(encoding)
        .ok_or_else(|| BlockError::Header(format!("unknown encoding {encoding}")))?;
    if rows as usize > BLOCK_ROWS_MAX
        || raw_len as usize > BLOCK_RAW_BYTES_MAX
        || stored_len as usize > BLOCK_RAW_BYTES_MAX
    {
        return Err(BlockError::Header(format!(
            "sizes out of bounds: rows {rows}, raw {raw_len}, stored {stored_len}"
        )));
    }
    let compressed = match compression {
        0 => true,
        1 => false,
        c => return Err(BlockError::Header(format!("unknown compression {c}"))),
    };
    if !compressed && raw_len != stored_len {
        return Err(BlockError::Header(format!(
            "uncompressed block with raw {raw_len} != stored {stored_len}"
        )));
    }
    Ok(BlockHeader {
        encoding,
        compressed,
        physical,
        rows,
        raw_len,
        stored_len,
        payload_crc,
    })
}

/// Fixed-width values that blocks know how to encode.
trait Fixed: Copy + PartialEq {
    const WIDTH: usize;
    fn put(self, w: &mut Vec<u8>);
    fn get(b: &[u8]) -> Self;
    fn bits(self) -> u64;
    /// As a signed integer for delta coding (`None` for floats).
    fn as_i64(self) -> Option<i64>;
    fn from_i64(v: i64) -> Option<Self>;
}

macro_rules! fixed_int {
    ($t:ty) => {
        impl Fixed for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn put(self, w: &mut Vec<u8>) {
                w.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("width checked"))
            }
            fn bits(self) -> u64 {
                self as u64
            }
            fn as_i64(self) -> Option<i64> {
                Some(self as i64)
            }
            fn from_i64(v: i64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
        }
    };
}
fixed_int!(i8);
fixed_int!(i16);
fixed_int!(i32);
fixed_int!(i64);
fixed_int!(u32);

macro_rules! fixed_float {
    ($t:ty) => {
        impl Fixed for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn put(self, w: &mut Vec<u8>) {
                w.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("width checked"))
            }
            fn bits(self) -> u64 {
                self.to_bits() as u64
            }
            fn as_i64(self) -> Option<i64> {
                None
            }
            fn from_i64(_: i64) -> Option<Self> {
                None
            }
        }
    };
}
fixed_float!(f32);
fixed_float!(f64);

fn encode_plain<T: Fixed>(v: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * T::WIDTH);
    for x in v {
        x.put(&mut out);
    }
    out
}

fn encode_dict<T: Fixed>(v: &[T]) -> Option<Vec<u8>> {
    // Open addressing keyed by the value's bits: several times faster than a HashMap here.
    // The table starts small and doubles whenever it is half full, so a column of a few
    // hundred distinct values (prices, flags: the ones a dictionary pays for) probes a table
    // that stays in cache instead of zeroing and scattering over one sized for the worst case.
    let slots_max = (v.len().min(DICT_VALUES_MAX) * 2)
        .next_power_of_two()
        .max(16);
    let mut slots = slots_max.min(1 << 10);
    let mut keys: Vec<u64> = vec![0; slots];
    let mut vals: Vec<u32> = vec![u32::MAX; slots];
    let mut dict: Vec<T> = Vec::new();
    let mut codes: Vec<u32> = Vec::with_capacity(v.len());
    let slot_of = |bits: u64, slots: usize| {
        (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - slots.trailing_zeros())) as usize
    };
    for x in v {
        let bits = x.bits();
        let mut i = slot_of(bits, slots);
        let code = loop {
            if vals[i] == u32::MAX {
                if dict.len() >= DICT_VALUES_MAX {
                    return None;
                }
                if (dict.len() + 1) * 2 > slots {
                    if slots >= slots_max {
                        return None;
                    }
                    // Grow, re-placing every value (its code stays).
                    slots *= 2;
                    keys = vec![0; slots];
                    vals = vec![u32::MAX; slots];
                    for (code, d) in dict.iter().enumerate() {
                        let mut j = slot_of(d.bits(), slots);
                        while vals[j] != u32::MAX {
                            j = (j + 1) & (slots - 1);
                        }
                        keys[j] = d.bits();
                        vals[j] = code as u32;
                    }
                    i = slot_of(bits, slots);
                    continue;
                }
                keys[i] = bits;
                vals[i] = dict.len() as u32;
                dict.push(*x);
                break vals[i];
            }
            if keys[i] == bits {
                break vals[i];
            }
            i = (i + 1) & (slots - 1);
        };
        codes.push(code);
    }
    let width: u8 = if dict.len() <= 256 { 1 } else { 2 };
    let mut w = Writer::with_capacity(dict.len() * T::WIDTH + v.len() * width as usize + 8);
    w.varint(dict.len() as u64);
    for d in &dict {
        d.put(&mut w.buf);
    }
    w.u8(width);
    if width == 1 {
        w.buf.extend(codes.iter().map(|c| *c as u8));
    } else {
        for c in codes {
            w.u16(c as u16);
        }
    }
    Some(w.buf)
}

fn encode_delta<T: Fixed>(v: &[T]) -> Option<Vec<u8>> {
    let mut w = Writer::with_capacity(v.len() + 8);
    let mut prev = 0i64;
    for x in v {
        let cur = x.as_i64()?;
        w.varint_signed(cur.wrapping_sub(prev));
        prev = cur;
    }
    Some(w.buf)
}

fn encode_rle<T: Fixed>(v: &[T]) -> Vec<u8> {
    let mut w = Writer::default();
    let mut runs: Vec<(T, u64)> = Vec::new();
    for x in v {
        match runs.last_mut() {
            Some((y, n)) if y.bits() == x.bits() => *n += 1,
            _ => runs.push((*x, 1)),
        }
    }
    w.varint(runs.len() as u64);
    for (x, n) in runs {
        x.put(&mut w.buf);
        w.varint(n);
    }
    w.buf
}

fn count_runs<T: Fixed>(v: &[T]) -> usize {
    1 + v.windows(2).filter(|p| p[0].bits() != p[1].bits()).count()
}

/// Chooses the smallest encoding of `v`.
fn encode_fixed<T: Fixed>(v: &[T]) -> (Encoding, Vec<u8>) {
    let mut best = (Encoding::Plain, encode_plain(v));
    if v.is_empty() {
        return best;
    }
    if count_runs(v) * (T::WIDTH + 2) < best.1.len() / 2 {
        let r = encode_rle(v);
        if r.len() < best.1.len() {
            best = (Encoding::Rle, r);
        }
    }
    if let Some(d) = encode_delta(v) {
        if d.len() < best.1.len() {
            best = (Encoding::Delta, d);
        }
    }
    if best.1.len() > v.len() {
        if let Some(d) = encode_dict(v) {
            if d.len() < best.1.len() {
                best = (Encoding::Dict, d);
            }
        }
    }
    best
}

fn decode_fixed<T: Fixed>(enc: Encoding, raw: &[u8], rows: usize) -> Result<Vec<T>, BlockError> {
    let mut out = Vec::with_capacity(rows);
    decode_fixed_into(enc, raw, rows, &mut out)?;
    Ok(out)
}

/// Decodes `rows` values, appending them to `out` (no intermediate vector).
fn decode_fixed_into<T: Fixed>(
    enc: Encoding,
    raw: &[u8],
    rows: usize,
    out: &mut Vec<T>,
) -> Result<(), BlockError> {
    let start_len = out.len();
    out.reserve(rows);
    let mut r = Reader::new(raw);
    match enc {
        Encoding::Plain => {
            let b = r.take(
                rows.checked_mul(T::WIDTH)
                    .ok_or_else(|| r.err("overflow"))?,
            )?;
            out.extend(b.chunks_exact(T::WIDTH).map(T::get));
        }
        Encoding::Dict => {
            let n = r.count(DICT_VALUES_MAX)?;
            let dict: Vec<T> = r
                .take(n * T::WIDTH)?
                .chunks_exact(T::WIDTH)
                .map(T::get)
                .collect();
            let width = r.u8()?;
            match width {
                1 => {
                    let codes = r.take(rows)?;
                    // One vectorisable pass to validate, then a 256-entry table indexed by a
                    // u8: the hot loop has no bounds checks.
                    let max = codes.iter().copied().max().unwrap_or(0) as usize;
                    if !codes.is_empty() && max >= dict.len() {
                        return Err(BlockError::Payload(format!(
                            "dictionary code {max} >= {}",
                            dict.len()
                        )));
                    }
                    if let Some(&fill) = dict.first() {
                        let table: [T; 256] =
                            std::array::from_fn(|i| dict.get(i).copied().unwrap_or(fill));
                        out.extend(codes.iter().map(|c| table[*c as usize]));
                    }
                }
                2 => {
                    for c in r.take(rows * 2)?.chunks_exact(2) {
                        let c = u16::from_le_bytes([c[0], c[1]]) as usize;
                        out.push(*dict.get(c).ok_or_else(|| {
                            BlockError::Payload(format!("dictionary code {c} >= {}", dict.len()))
                        })?);
                    }
                }
                w => return Err(BlockError::Payload(format!("dictionary code width {w}"))),
            }
        }
        Encoding::Delta => {
            let mut prev = 0i64;
            for _ in 0..rows {
                prev = prev.wrapping_add(r.varint_signed()?);
                out.push(T::from_i64(prev).ok_or_else(|| {
                    BlockError::Payload(format!("delta value {prev} out of range"))
                })?);
            }
        }
        Encoding::Rle => {
            let runs = r.count(rows)?;
            for _ in 0..runs {
                let x = T::get(r.take(T::WIDTH)?);
                let n = r.varint()?;
                if n as usize > rows - (out.len() - start_len) {
                    return Err(BlockError::Payload("run-length overflows the block".into()));
                }
                out.extend(std::iter::repeat_n(x, n as usize));
            }
        }
    }
    if out.len() - start_len != rows || r.remaining() != 0 {
        return Err(BlockError::Payload(format!(
            "decoded {} of {rows} rows, {} bytes left",
            out.len() - start_len,
            r.remaining()
        )));
    }
    Ok(())
}

/// Encodes rows `start..end` of `col` (no copy of the rows first).
fn encode_payload(col: &Column, start: usize, end: usize) -> (Encoding, Vec<u8>) {
    match &col.data {
        ColumnData::I8(v) => encode_fixed(&v[start..end]),
        ColumnData::I16(v) => encode_fixed(&v[start..end]),
        ColumnData::I32(v) => encode_fixed(&v[start..end]),
        ColumnData::I64(v) => encode_fixed(&v[start..end]),
        ColumnData::F32(v) => encode_fixed(&v[start..end]),
        ColumnData::F64(v) => encode_fixed(&v[start..end]),
        ColumnData::Symbol { codes, .. } => encode_fixed(&codes[start..end]),
        ColumnData::Bytes { offsets, data } => {
            let span = offsets[end] - offsets[start];
            let mut w = Writer::with_capacity(span as usize + (end - start) * 2);
            for pair in offsets[start..=end].windows(2) {
                w.blob(&data[pair[0] as usize..pair[1] as usize]);
            }
            (Encoding::Plain, w.buf)
        }
    }
}

thread_local! {
    /// One zstd context per thread (a shard), reused for every block: creating one per block
    /// showed in the ingest profile.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(raw: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let c = c.get_or_insert_with(|| {
            zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context at a valid level")
        });
        c.compress(raw)
            .expect("zstd compression of an in-memory buffer")
    })
}

/// Encodes rows of `col` into one block (header + zstd payload).
pub fn encode_block(col: &Column) -> Vec<u8> {
    let mut out = Vec::new();
    encode_block_into(col, 0, col.len(), &mut out);
    out
}

/// Encodes rows `start..end` of `col` as one block appended to `out` (a segment being
/// written): the rows are read in place and the block written where it goes.
pub fn encode_block_into(col: &Column, start: usize, end: usize, out: &mut Vec<u8>) {
    let rows = end - start;
    assert!(
        rows <= BLOCK_ROWS_MAX,
        "block of {rows} rows exceeds BLOCK_ROWS_MAX"
    );
    let (encoding, raw) = encode_payload(col, start, end);
    assert!(
        raw.len() <= BLOCK_RAW_BYTES_MAX,
        "block payload of {} bytes exceeds the maximum",
        raw.len()
    );
    let raw_len = raw.len();
    let zstd = compress(&raw);
    // Keep zstd only where it saves more than a third: dictionary codes of a few dozen random
    // values shrink by a quarter at best, and decompressing them would halve scan speed.
    let compressed = zstd.len() * 3 < raw.len() * 2;
    let stored = if compressed { zstd } else { raw };
    let mut w = Writer::with_capacity(BLOCK_HEADER_BYTES);
    w.u32(BLOCK_MAGIC);
    w.u8(BLOCK_FORMAT);
    w.u8(encoding as u8);
    w.u8(physical_id(col.ty.physical()));
    w.u8(if compressed { 0 } else { 1 });
    w.u32(rows as u32);
    w.u32(raw_len as u32);
    w.u32(stored.len() as u32);
    w.u32(crc32fast::hash(&stored));
    let header_crc = crc32fast::hash(&w.buf);
    w.u32(header_crc);
    let at = out.len();
    out.extend_from_slice(&w.buf);
    out.extend_from_slice(&stored);
    // Check the header as a reader will see it, before it goes anywhere.
    let h = read_header(&out[at..]).expect("a freshly encoded block header verifies");
    assert_eq!((h.rows as usize, h.total_len()), (rows, out.len() - at));
}

/// Decodes a block and appends its values to `out` (same type; for SYMBOL, `out`'s base must be
/// the chunk base the codes refer to). Returns the bytes consumed. On error `out` may hold a
/// partial block: callers discard it.
pub fn decode_block_into(bytes: &[u8], out: &mut Column) -> Result<usize, BlockError> {
    let ty = out.ty;
    let (h, raw) = verified_payload(bytes, ty)?;
    let rows = h.rows as usize;
    match &mut out.data {
        ColumnData::I8(v) => decode_fixed_into(h.encoding, &raw, rows, v)?,
        ColumnData::I16(v) => decode_fixed_into(h.encoding, &raw, rows, v)?,
        ColumnData::I32(v) => decode_fixed_into(h.encoding, &raw, rows, v)?,
        ColumnData::I64(v) => decode_fixed_into(h.encoding, &raw, rows, v)?,
        ColumnData::F32(v) => decode_fixed_into(h.encoding, &raw, rows, v)?,
        ColumnData::F64(v) => decode_fixed_into(h.encoding, &raw, rows, v)?,
        ColumnData::Symbol { codes, base } => {
            let start = codes.len();
            decode_fixed_into(h.encoding, &raw, rows, codes)?;
            let n = base.strings.len() as u32;
            if codes[start..].iter().any(|c| *c >= n) {
                return Err(BlockError::Payload(format!(
                    "symbol code outside a base of {n}"
                )));
            }
        }
        ColumnData::Bytes { .. } => {
            let (col, used) = decode_block(bytes, ty, None)?;
            out.append(&col).map_err(BlockError::Payload)?;
            return Ok(used);
        }
    }
    Ok(h.total_len())
}

fn verified_payload(
    bytes: &[u8],
    ty: DataType,
) -> Result<(BlockHeader, std::borrow::Cow<'_, [u8]>), BlockError> {
    let h = read_header(bytes)?;
    if h.physical != physical_id(ty.physical()) {
        return Err(BlockError::Header(format!(
            "block holds physical type {}, expected {}",
            h.physical,
            ty.name()
        )));
    }
    let total = h.total_len();
    if bytes.len() < total {
        return Err(BlockError::Header(format!(
            "block needs {total} bytes, {} available",
            bytes.len()
        )));
    }
    let stored = &bytes[BLOCK_HEADER_BYTES..total];
    let computed = crc32fast::hash(stored);
    if computed != h.payload_crc {
        return Err(BlockError::Checksum {
            stored: h.payload_crc,
            computed,
        });
    }
    if !h.compressed {
        return Ok((h, std::borrow::Cow::Borrowed(stored)));
    }
    let raw = zstd::bulk::decompress(stored, h.raw_len as usize)
        .map_err(|e| BlockError::Payload(format!("zstd: {e}")))?;
    if raw.len() != h.raw_len as usize {
        return Err(BlockError::Payload(format!(
            "decompressed {} bytes, header says {}",
            raw.len(),
            h.raw_len
        )));
    }
    Ok((h, std::borrow::Cow::Owned(raw)))
}

/// Decodes a block of type `ty`. SYMBOL blocks need the chunk's symbol `base`.
/// Returns the column and the bytes consumed.
pub fn decode_block(
    bytes: &[u8],
    ty: DataType,
    base: Option<&Arc<SymbolBase>>,
) -> Result<(Column, usize), BlockError> {
    let (h, raw) = verified_payload(bytes, ty)?;
    let total = h.total_len();
    let rows = h.rows as usize;
    let data = match ty.physical() {
        Physical::I8 => ColumnData::I8(decode_fixed(h.encoding, &raw, rows)?),
        Physical::I16 => ColumnData::I16(decode_fixed(h.encoding, &raw, rows)?),
        Physical::I32 => ColumnData::I32(decode_fixed(h.encoding, &raw, rows)?),
        Physical::I64 => ColumnData::I64(decode_fixed(h.encoding, &raw, rows)?),
        Physical::F32 => ColumnData::F32(decode_fixed(h.encoding, &raw, rows)?),
        Physical::F64 => ColumnData::F64(decode_fixed(h.encoding, &raw, rows)?),
        Physical::Symbol => {
            let base = base.ok_or_else(|| {
                BlockError::Payload("a SYMBOL block needs its symbol base".into())
            })?;
            let codes: Vec<u32> = decode_fixed(h.encoding, &raw, rows)?;
            if let Some(c) = codes.iter().find(|c| **c as usize >= base.strings.len()) {
                return Err(BlockError::Payload(format!(
                    "symbol code {c} outside a base of {}",
                    base.strings.len()
                )));
            }
            ColumnData::Symbol {
                codes,
                base: base.clone(),
            }
        }
        Physical::Bytes => {
            let mut r = Reader::new(&raw);
            let mut offsets = Vec::with_capacity(rows + 1);
            let mut data = Vec::with_capacity(raw.len());
            offsets.push(0u32);
            for _ in 0..rows {
                data.extend_from_slice(r.blob()?);
                offsets.push(data.len() as u32);
            }
            if r.remaining() != 0 {
                return Err(BlockError::Payload(
                    "trailing bytes after the last value".into(),
                ));
            }
            ColumnData::Bytes { offsets, data }
        }
    };
    let col = Column { ty, data };
    debug_assert!(col.validate().is_ok());
    Ok((col, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(col: &Column) -> (Encoding, usize) {
        let block = encode_block(col);
        let base = match &col.data {
            ColumnData::Symbol { base, .. } => Some(base.clone()),
            _ => None,
        };
        let (back, used) = decode_block(&block, col.ty, base.as_ref()).unwrap();
        assert_eq!(&back, col);
        assert_eq!(used, block.len());
        (read_header(&block).unwrap().encoding, block.len())
    }

    /// The dictionary's table grows from its small start (1,024 slots) as distinct values
    /// arrive: a few thousand of them still make a dictionary, codes in first-seen order; more
    /// distinct values than a dictionary holds give it up.
    #[test]
    fn a_dictionary_grows_past_its_first_table() {
        let n = 60_000;
        let many: Vec<f64> = (0..n).map(|i| ((i * 7919) % 3_000) as f64 * 0.5).collect();
        let (enc, raw) = encode_fixed(&many);
        assert_eq!(enc, Encoding::Dict);
        assert!(
            raw.len() < n * 3,
            "2-byte codes and a 3,000-value dictionary"
        );
        assert_eq!(decode_fixed::<f64>(enc, &raw, n).unwrap(), many);
        let distinct: Vec<f64> = (0..DICT_VALUES_MAX + 10).map(|i| i as f64 * 1.25).collect();
        assert!(encode_dict(&distinct).is_none());
    }

    #[test]
    fn every_encoding_round_trips() {
        let n = 10_000;
        let sorted: Vec<i32> = (0..n).map(|i| 1_673_170_200 + i * 60).collect();
        assert_eq!(
            round_trip(&Column {
                ty: DataType::DateTime,
                data: ColumnData::I32(sorted)
            })
            .0,
            Encoding::Delta
        );
        let runs: Vec<i64> = (0..n).map(|i| (i / 1000) as i64).collect();
        assert_eq!(
            round_trip(&Column {
                ty: DataType::Long,
                data: ColumnData::I64(runs)
            })
            .0,
            Encoding::Rle
        );
        let prices: Vec<f64> = (0..n)
            .map(|i| 10.0 + ((i * 7919) % 100) as f64 / 100.0)
            .collect();
        assert_eq!(
            round_trip(&Column {
                ty: DataType::Double,
                data: ColumnData::F64(prices)
            })
            .0,
            Encoding::Dict
        );
        let many: Vec<f64> = (0..n).map(|i| (i as f64).sqrt()).collect();
        round_trip(&Column {
            ty: DataType::Double,
            data: ColumnData::F64(many),
        });
        let wide: Vec<i32> = (0..n).map(|i| (i * 7919) % 5000).collect();
        round_trip(&Column {
            ty: DataType::Int,
            data: ColumnData::I32(wide),
        });
        let nulls = vec![crate::types::null::I16; 100];
        round_trip(&Column {
            ty: DataType::Short,
            data: ColumnData::I16(nulls),
        });
        round_trip(&Column {
            ty: DataType::Bool,
            data: ColumnData::I8(vec![1, 0, -128, 1]),
        });
        round_trip(&Column {
            ty: DataType::Float,
            data: ColumnData::F32(vec![1.5, -f32::MAX, 0.0]),
        });
        round_trip(&Column::from_strings(
            DataType::String,
            &["a", "", "héllo", "a"],
        ));
        round_trip(&Column::from_strings(
            DataType::Symbol,
            &["000001", "000001", "000002", ""],
        ));
        round_trip(&Column::empty(DataType::Double));
        let extremes = vec![i64::MIN, i64::MAX, 0, i64::MIN, -1];
        round_trip(&Column {
            ty: DataType::Long,
            data: ColumnData::I64(extremes),
        });
    }

    #[test]
    fn corruption_is_detected_never_served() {
        let col = Column {
            ty: DataType::Int,
            data: ColumnData::I32((0..1000).collect()),
        };
        let block = encode_block(&col);
        for i in 0..block.len() {
            let mut bad = block.clone();
            bad[i] ^= 0x10;
            assert!(
                decode_block(&bad, DataType::Int, None).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
        assert!(decode_block(&block[..block.len() - 1], DataType::Int, None).is_err());
        assert!(
            decode_block(&block, DataType::Double, None).is_err(),
            "type mismatch"
        );
    }
}

#[cfg(test)]
mod compression_choice {
    use super::*;

    #[test]
    fn incompressible_dictionary_codes_are_stored_plain() {
        let mut rng = rt::rand::Rng::with_seed(5);
        let prices: Vec<f64> = (0..100).map(|i| 10.0 + i as f64 / 100.0).collect();
        let v: Vec<f64> = (0..65536)
            .map(|_| prices[rng.below(100) as usize])
            .collect();
        let block = encode_block(&Column {
            ty: DataType::Double,
            data: ColumnData::F64(v),
        });
        let h = read_header(&block).unwrap();
        assert_eq!(h.encoding, Encoding::Dict);
        assert!(!h.compressed, "raw {} stored {}", h.raw_len, h.stored_len);
        assert_eq!(
            decode_block(&block, DataType::Double, None)
                .unwrap()
                .0
                .len(),
            65536
        );
        // Long runs do compress, and keep zstd.
        let runs: Vec<i32> = (0..65536).map(|i| (i / 7) % 3).collect();
        let block = encode_block(&Column {
            ty: DataType::Int,
            data: ColumnData::I32(runs),
        });
        assert!(read_header(&block).unwrap().compressed);
    }
}
