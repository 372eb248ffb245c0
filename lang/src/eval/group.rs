//! Grouping rows by key columns, without per-row allocation.
//!
//! Each key column becomes dense ids `0..cardinality` (SYMBOL codes as they are; integers and
//! temporals as `(value - min) / stride` when that range is small, the stride being the
//! greatest common divisor of the offsets — `bar(DateTime, 5m)` gives multiples of 300;
//! anything else through a hash map of its distinct values). The ids of all keys combine into
//! one composite number; when the product of cardinalities is small (≤ [`DIRECT_GROUPS_MAX`],
//! or up to twice the rows, at most [`DIRECT_GROUPS_CAP`]) a flat table maps composite →
//! group id with no hashing at all (the tutorial's OHLC query: one date × 5000 symbols; 5000
//! symbols × 5760 five-minute bars over 20 days), otherwise a hash map on the composite does.
//!
//! Invariant: every row gets exactly one group id in `0..ngroups`, and `first[g]` is the
//! smallest row of group `g`.

use std::borrow::Cow;
use std::collections::HashMap;

use storage::column::{Column, ColumnData};

/// Largest composite key space mapped through a flat table (4 bytes per slot).
pub const DIRECT_GROUPS_MAX: usize = 1 << 22;
/// Largest flat table for many rows (128 MiB): a table as large as twice the rows costs less
/// to fill and probe than hashing every row.
pub const DIRECT_GROUPS_CAP: usize = 1 << 25;
/// Largest integer range turned into dense ids by subtraction.
const DENSE_RANGE_MAX: i64 = 1 << 22;

/// Rows grouped: the group of each row, and each group's first row.
pub struct Groups {
    pub of_row: Vec<u32>,
    pub first: Vec<usize>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// The rows of each group, in row order.
    pub fn members(&self) -> Vec<Vec<usize>> {
        let mut counts = vec![0usize; self.len()];
        for g in &self.of_row {
            counts[*g as usize] += 1;
        }
        let mut out: Vec<Vec<usize>> = counts.into_iter().map(Vec::with_capacity).collect();
        for (row, g) in self.of_row.iter().enumerate() {
            out[*g as usize].push(row);
        }
        out
    }
}

fn dense_ints<T: Copy + Into<i64>>(v: &[T]) -> (Vec<u32>, usize) {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for x in v {
        let x: i64 = (*x).into();
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if v.is_empty() {
        return (Vec::new(), 1);
    }
    // A common stride (bar starts, whole seconds in milliseconds) brings the range down;
    // the scan stops at the first offset that rules one out.
    let Some(span) = hi.checked_sub(lo) else {
        return hashed(v.iter().map(|x| (*x).into() as u64));
    };
    let stride = if span > 0 {
        v.iter()
            .try_fold(0i64, |g, x| {
                let g = gcd(g, (*x).into() - lo);
                if g == 1 {
                    Err(())
                } else {
                    Ok(g)
                }
            })
            .unwrap_or(1)
            .max(1)
    } else {
        1
    };
    if span / stride < DENSE_RANGE_MAX {
        let ids = v
            .iter()
            .map(|x| (((*x).into() - lo) / stride) as u32)
            .collect();
        return (ids, (span / stride + 1) as usize);
    }
    hashed(v.iter().map(|x| (*x).into() as u64))
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i64
}

fn hashed<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> (Vec<u32>, usize) {
    let mut map: HashMap<K, u32> = HashMap::new();
    let ids = keys
        .map(|k| {
            let next = map.len() as u32;
            *map.entry(k).or_insert(next)
        })
        .collect();
    (ids, map.len().max(1))
}

/// Dense ids of one key column and their cardinality (SYMBOL codes are borrowed as they are).
fn dense_ids(c: &Column) -> (Cow<'_, [u32]>, usize) {
    let owned = |(ids, card): (Vec<u32>, usize)| (Cow::Owned(ids), card);
    match &c.data {
        ColumnData::Symbol { codes, base } => (Cow::Borrowed(codes), base.strings.len().max(1)),
        ColumnData::I8(v) => owned(dense_ints(v)),
        ColumnData::I16(v) => owned(dense_ints(v)),
        ColumnData::I32(v) => owned(dense_ints(v)),
        ColumnData::I64(v) => owned(dense_ints(v)),
        ColumnData::F32(v) => owned(hashed(v.iter().map(|x| x.to_bits()))),
        ColumnData::F64(v) => owned(hashed(v.iter().map(|x| x.to_bits()))),
        ColumnData::Bytes { .. } => owned(hashed(
            (0..c.len()).map(|i| c.bytes_at(i).unwrap_or_default()),
        )),
    }
}

/// Groups `rows` rows by the key columns (at least one).
pub fn group(keys: &[&Column], rows: usize) -> Groups {
    let dense: Vec<(Cow<'_, [u32]>, usize)> = keys.iter().map(|c| dense_ids(c)).collect();
    let space = dense
        .iter()
        .try_fold(1usize, |acc, (_, card)| acc.checked_mul(*card));
    let composite = |row: usize| -> u64 {
        dense.iter().fold(0u64, |acc, (ids, card)| {
            acc * *card as u64 + ids[row] as u64
        })
    };
    let mut of_row = Vec::with_capacity(rows);
    let mut first = Vec::new();
    match space {
        Some(n) if n <= DIRECT_GROUPS_MAX.max((2 * rows).min(DIRECT_GROUPS_CAP)) => {
            let mut slot = vec![u32::MAX; n];
            if let [(ids, _)] = dense.as_slice() {
                // One key: its id is the slot.
                for (row, id) in ids.iter().enumerate() {
                    let s = &mut slot[*id as usize];
                    if *s == u32::MAX {
                        *s = first.len() as u32;
                        first.push(row);
                    }
                    of_row.push(*s);
                }
            } else {
                for row in 0..rows {
                    let s = &mut slot[composite(row) as usize];
                    if *s == u32::MAX {
                        *s = first.len() as u32;
                        first.push(row);
                    }
                    of_row.push(*s);
                }
            }
        }
        Some(_) => {
            let mut map: HashMap<u64, u32> = HashMap::new();
            for row in 0..rows {
                let next = first.len() as u32;
                let g = *map.entry(composite(row)).or_insert_with(|| {
                    first.push(row);
                    next
                });
                of_row.push(g);
            }
        }
        None => {
            // The composite overflows: hash the id tuples.
            let mut map: HashMap<Vec<u32>, u32> = HashMap::new();
            let mut key = Vec::with_capacity(dense.len());
            for row in 0..rows {
                key.clear();
                key.extend(dense.iter().map(|(ids, _)| ids[row]));
                let next = first.len() as u32;
                let g = match map.get(&key) {
                    Some(g) => *g,
                    None => {
                        map.insert(key.clone(), next);
                        first.push(row);
                        next
                    }
                };
                of_row.push(g);
            }
        }
    }
    debug_assert_eq!(of_row.len(), rows);
    debug_assert!(of_row.iter().all(|g| (*g as usize) < first.len()));
    Groups { of_row, first }
}

// --- Groups in key order, as `group by` and `context by` give them.

/// Orders two rows of a column: strings by bytes, numbers by value, nulls first.
pub(crate) fn compare_rows(c: &Column, a: usize, b: usize) -> std::cmp::Ordering {
    match (c.bytes_at(a), c.bytes_at(b)) {
        (Some(x), Some(y)) => x.cmp(y),
        _ => super::ops::scalar_f64(c, a)
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&super::ops::scalar_f64(c, b).unwrap_or(f64::NEG_INFINITY)),
    }
}

/// Rows grouped by `keys`: each row's group, each group's first row, the groups in key order,
/// and (computed when asked for) each group's rows.
pub(super) struct Grouping {
    pub(super) groups: Vec<u32>,
    pub(super) first: Vec<usize>,
    pub(super) order: Vec<usize>,
    pub(super) members: std::cell::OnceCell<Vec<Vec<usize>>>,
}

impl Grouping {
    pub(super) fn members(&self) -> &[Vec<usize>] {
        self.members.get_or_init(|| {
            Groups {
                of_row: self.groups.clone(),
                first: self.first.clone(),
            }
            .members()
        })
    }
}

/// Integers ordered as `compare_rows` orders rows `rows` of `c` (nulls first), so groups
/// sort by plain integer compares; `None` for STRING and BLOB (compared by their bytes).
fn order_keys(c: &Column, rows: &[usize]) -> Option<Vec<i64>> {
    Some(match &c.data {
        ColumnData::Symbol { codes, base } => {
            let mut by_text: Vec<u32> = (0..base.strings.len() as u32).collect();
            by_text.sort_by(|a, b| base.strings[*a as usize].cmp(&base.strings[*b as usize]));
            let mut rank = vec![0i64; base.strings.len()];
            for (r, code) in by_text.iter().enumerate() {
                rank[*code as usize] = r as i64;
            }
            rows.iter().map(|r| rank[codes[*r] as usize]).collect()
        }
        ColumnData::I8(v) => rows.iter().map(|r| v[*r] as i64).collect(),
        ColumnData::I16(v) => rows.iter().map(|r| v[*r] as i64).collect(),
        ColumnData::I32(v) => rows.iter().map(|r| v[*r] as i64).collect(),
        ColumnData::I64(v) => rows.iter().map(|r| v[*r]).collect(),
        // IEEE order as integers (the null sentinel, -MAX, sorts first with the negatives).
        ColumnData::F64(v) => rows.iter().map(|r| total_order(v[*r])).collect(),
        ColumnData::F32(v) => rows.iter().map(|r| total_order(v[*r] as f64)).collect(),
        ColumnData::Bytes { .. } => return None,
    })
}

fn total_order(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

pub(super) fn group_rows(keys: &[&Column], rows: usize) -> Grouping {
    let g = group(keys, rows);
    let order = key_order(keys, &g.first);
    Grouping {
        groups: g.of_row,
        first: g.first,
        order,
        members: std::cell::OnceCell::new(),
    }
}

/// The groups in key order, each group given by its first row in `keys`.
pub(super) fn key_order(keys: &[&Column], first: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..first.len()).collect();
    let ranks: Vec<Option<Vec<i64>>> = keys.iter().map(|c| order_keys(c, first)).collect();
    // Groups are distinct, so an unstable sort of plain integers gives the one order.
    match ranks.as_slice() {
        [Some(r)] => order.sort_unstable_by_key(|g| r[*g]),
        [Some(r0), Some(r1)] => order.sort_unstable_by_key(|g| (r0[*g], r1[*g])),
        _ => order.sort_by(|a, b| {
            for (c, rank) in keys.iter().zip(&ranks) {
                let o = match rank {
                    Some(r) => r[*a].cmp(&r[*b]),
                    None => compare_rows(c, first[*a], first[*b]),
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        }),
    }
    order
}

/// One run of rows of one group: (group, first row, end row).
pub(crate) type Run = (usize, usize, usize);

/// Groups of one SYMBOL key whose rows come in runs of one value (a partition stored in that
/// key's order, as the tutorial's are by SecurityID): the maximal runs and each group's first
/// row, read straight from the codes, with no per-row group array written and read back.
/// Groups are numbered by first appearance, as [`group`] numbers them. `None` once the runs
/// pass `max_runs` (short runs: the per-row grouping is the better path).
pub(super) fn symbol_runs(key: &Column, max_runs: usize) -> Option<(Vec<Run>, Vec<usize>)> {
    let ColumnData::Symbol { codes, base } = &key.data else {
        return None;
    };
    let mut slot = vec![u32::MAX; base.strings.len().max(1)];
    let (mut runs, mut first) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < codes.len() {
        let code = codes[start];
        let end = codes[start..]
            .iter()
            .position(|c| *c != code)
            .map_or(codes.len(), |n| start + n);
        let s = slot.get_mut(code as usize)?;
        if *s == u32::MAX {
            *s = first.len() as u32;
            first.push(start);
        }
        runs.push((*s as usize, start, end));
        if runs.len() > max_runs {
            return None;
        }
        start = end;
    }
    Some((runs, first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::types::DataType;

    #[test]
    fn the_three_paths_agree() {
        let a = Column {
            ty: DataType::Int,
            data: ColumnData::I32(vec![5, 7, 5, 7, 5]),
        };
        let wide = Column {
            ty: DataType::Long,
            data: ColumnData::I64(vec![0, i64::MAX, 0, i64::MAX, 1]),
        };
        let s = Column::from_strings(DataType::Symbol, &["x", "y", "x", "y", "x"]);
        for keys in [
            vec![a.clone()],
            vec![a.clone(), s.clone()],
            vec![wide.clone(), s],
            vec![wide, a],
        ] {
            let keys: Vec<&Column> = keys.iter().collect();
            let g = group(&keys, 5);
            assert_eq!(g.of_row[0], g.of_row[2]);
            assert_eq!(g.of_row[1], g.of_row[3]);
            assert_ne!(g.of_row[0], g.of_row[1]);
            assert_eq!(g.first[g.of_row[1] as usize], 1);
            assert_eq!(g.members().iter().map(Vec::len).sum::<usize>(), 5);
        }
    }

    #[test]
    fn symbol_runs_number_groups_as_grouping_does() {
        let key = Column::from_strings(DataType::Symbol, &["b", "b", "a", "a", "a", "b", "c"]);
        let (runs, first) = symbol_runs(&key, 10).unwrap();
        assert_eq!(runs, vec![(0, 0, 2), (1, 2, 5), (0, 5, 6), (2, 6, 7)]);
        assert_eq!(first, vec![0, 2, 6]);
        let g = group(&[&key], key.len());
        assert_eq!(g.first, first);
        for (group, start, end) in &runs {
            assert!(g.of_row[*start..*end].iter().all(|x| *x as usize == *group));
        }
        assert_eq!(symbol_runs(&key, 3), None, "more runs than allowed");
        assert_eq!(key_order(&[&key], &first), vec![1, 0, 2], "a, b, c");
    }
}
