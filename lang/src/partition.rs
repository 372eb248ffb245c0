//! Partition schemes — VALUE, RANGE, HASH, LIST and COMPO — as pure functions shared by the
//! single node and, later, the controller and data nodes: which partition each row goes to
//! (`assign`), and which partitions a query's conditions can touch (`may_match`).
//!
//! A scheme works on *keys*: a column's values mapped into the scheme's type. A DATE scheme
//! over a DATETIME/TIMESTAMP/NANOTIMESTAMP column keys rows by day, a MONTH scheme by month;
//! otherwise the value itself is the key (integers and temporals as i64, strings as bytes).
//!
//! Partition names: VALUE — the key (`19365` for 2023.01.08, or the string); RANGE — `R<i>`
//! for `[bounds[i], bounds[i+1])`; HASH — `Key<b>`; LIST — `List<i>`; COMPO — the levels'
//! names joined by `/`.
//!
//! Invariant: `assign` puts every row in exactly one partition or fails the whole batch (no
//! row is silently dropped); `may_match` is conservative — it may keep a partition that holds
//! no matching row, never drop one that does.

use std::collections::BTreeMap;

use storage::bytes::{Reader, Writer};
use storage::column::Column;
use storage::types::DataType;

use crate::eval::EvalError;

/// A row no partition takes (`newValuePartitionPolicy=skip`).
const SKIP: u32 = u32::MAX;

/// A partitioning key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// A null (sorts first).
    Null,
    I(i64),
    S(Vec<u8>),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Null => "NULL".into(),
            Key::I(v) => v.to_string(),
            Key::S(s) => String::from_utf8_lossy(s).into_owned(),
        }
    }
}

/// One level of partitioning.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    /// One partition per distinct key; `keys` are the declared ones (new keys are added when
    /// `newValuePartitionPolicy=add`).
    Value {
        ty: DataType,
        keys: Vec<Key>,
    },
    /// Partition `i` holds `[bounds[i], bounds[i + 1])`.
    Range {
        ty: DataType,
        bounds: Vec<Key>,
    },
    Hash {
        ty: DataType,
        buckets: u32,
    },
    List {
        ty: DataType,
        lists: Vec<Vec<Key>>,
    },
    Compo(Vec<Scheme>),
}

/// `newValuePartitionPolicy`: what a VALUE scheme does with a value it has no partition for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewValues {
    /// Create the partition.
    Add,
    /// Leave the row out (DolphinDB's `skip`; the append reports fewer rows).
    Skip,
    /// Refuse the whole append.
    Fail,
}

impl NewValues {
    pub fn parse(s: &str) -> NewValues {
        match s {
            "skip" => NewValues::Skip,
            "fail" => NewValues::Fail,
            _ => NewValues::Add,
        }
    }
}

/// Most partitions a scheme may declare.
pub const PARTITIONS_MAX: usize = 1 << 20;

fn msg(m: impl Into<String>) -> EvalError {
    EvalError::msg(m.into())
}

/// A column's values as keys of a scheme of type `ty`.
pub fn keys_of(ty: DataType, c: &Column) -> Result<Vec<Key>, EvalError> {
    if matches!(ty, DataType::String | DataType::Symbol) {
        return (0..c.len())
            .map(|i| match c.bytes_at(i) {
                Some([]) => Ok(Key::Null),
                Some(b) => Ok(Key::S(b.to_vec())),
                None => Ok(Key::S(crate::display::cell(c, i).into_bytes())),
            })
            .collect();
    }
    Ok(int_keys(ty, c)?
        .into_iter()
        .map(|v| if v == i64::MIN { Key::Null } else { Key::I(v) })
        .collect())
}

/// A numeric or temporal column's values as integer keys of a scheme of type `ty` (a DATE
/// scheme over DATETIME values takes their day); `i64::MIN` is a null.
fn int_keys(ty: DataType, c: &Column) -> Result<Vec<i64>, EvalError> {
    let vals = crate::eval::column_i64(c).ok_or_else(|| {
        msg(format!(
            "a {} column cannot be partitioned by a {} scheme",
            c.ty.name(),
            ty.name()
        ))
    })?;
    let per_day = |t: DataType| match t {
        DataType::Date => Some(1i64),
        DataType::DateTime => Some(86_400),
        DataType::Timestamp => Some(86_400_000),
        DataType::NanoTimestamp => Some(86_400_000_000_000),
        _ => None,
    };
    let map: Box<dyn Fn(i64) -> i64> = match (ty, per_day(c.ty)) {
        (DataType::Date, Some(d)) => Box::new(move |v| v.div_euclid(d)),
        (DataType::Month, Some(d)) => Box::new(move |v| {
            let (y, m, _) = crate::display::civil_from_days(v.div_euclid(d));
            y * 12 + m as i64 - 1
        }),
        _ => Box::new(|v| v),
    };
    Ok(vals
        .into_iter()
        .map(|v| if v == i64::MIN { v } else { map(v) })
        .collect())
}

fn hash_bucket(k: &Key, buckets: u32) -> u32 {
    match k {
        Key::Null => 0,
        Key::I(v) => v.rem_euclid(buckets as i64) as u32,
        Key::S(s) => crc32fast::hash(s) % buckets,
    }
}

/// A key as DolphinDB names its partition's directory: a DATE as `20230108`, a MONTH as
/// `202301M`, anything else as its value.
fn dir_name(ty: DataType, k: &Key) -> String {
    match (ty, k) {
        (DataType::Date, Key::I(days)) => {
            let (y, m, d) = value::display::civil_from_days(*days);
            format!("{y:04}{m:02}{d:02}")
        }
        (DataType::Month, Key::I(months)) => {
            format!(
                "{:04}{:02}M",
                months.div_euclid(12),
                months.rem_euclid(12) + 1
            )
        }
        _ => k.name(),
    }
}

impl Scheme {
    /// The path DolphinDB shows for partition `name` (`getClusterChunksStatus`, the web's DFS
    /// browser, `dropPartition` by path): the levels of a COMPO name joined by `/`, each level
    /// as [`dir_name`] names its value, a RANGE as `low_high`. Internal names stay the keys of
    /// the metadata; this is how they are shown.
    pub fn display_path(&self, name: &str) -> String {
        let levels: Vec<&Scheme> = match self {
            Scheme::Compo(levels) => levels.iter().collect(),
            one => vec![one],
        };
        name.split('/')
            .enumerate()
            .map(|(i, part)| match levels.get(i) {
                Some(level) => level.display_level(part),
                None => part.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn display_level(&self, part: &str) -> String {
        match self {
            Scheme::Value { ty, .. } => match part.parse::<i64>() {
                Ok(v) if *ty != DataType::Symbol && *ty != DataType::String => {
                    dir_name(*ty, &Key::I(v))
                }
                _ => part.to_string(),
            },
            Scheme::Range { ty, bounds } => part
                .strip_prefix('R')
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|i| i + 1 < bounds.len())
                .map(|i| {
                    format!(
                        "{}_{}",
                        dir_name(*ty, &bounds[i]),
                        dir_name(*ty, &bounds[i + 1])
                    )
                })
                .unwrap_or_else(|| part.to_string()),
            _ => part.to_string(),
        }
    }

    /// Builds a scheme from `database(path, kind, scheme)` arguments: `scheme` is a vector of
    /// keys (VALUE, RANGE bounds, LIST as a tuple of vectors), a bucket count (HASH, given as
    /// `[type, n]`) or, for COMPO, the levels.
    pub fn new(
        kind: &str,
        ty: DataType,
        values: &[Key],
        lists: Vec<Vec<Key>>,
    ) -> Result<Scheme, EvalError> {
        if values.len() > PARTITIONS_MAX || lists.len() > PARTITIONS_MAX {
            return Err(msg(format!(
                "a scheme may declare at most {PARTITIONS_MAX} partitions"
            )));
        }
        Ok(match kind {
            "VALUE" => Scheme::Value {
                ty,
                keys: values.to_vec(),
            },
            "RANGE" => {
                if values.len() < 2 || values.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(msg(
                        "RANGE partitioning needs at least two increasing boundaries",
                    ));
                }
                Scheme::Range {
                    ty,
                    bounds: values.to_vec(),
                }
            }
            "LIST" => {
                if lists.is_empty() {
                    return Err(msg("LIST partitioning needs at least one list of values"));
                }
                Scheme::List { ty, lists }
            }
            other => return Err(msg(format!("unknown partition type {other}"))),
        })
    }

    /// The number of columns the scheme partitions by.
    pub fn levels(&self) -> usize {
        match self {
            Scheme::Compo(l) => l.len(),
            _ => 1,
        }
    }

    /// The scheme's type per level (for `schema()`'s partitionColumnType).
    pub fn types(&self) -> Vec<DataType> {
        match self {
            Scheme::Value { ty, .. }
            | Scheme::Range { ty, .. }
            | Scheme::Hash { ty, .. }
            | Scheme::List { ty, .. } => vec![*ty],
            Scheme::Compo(l) => l.iter().flat_map(|s| s.types()).collect(),
        }
    }

    /// DolphinDB's partition type codes per level: VALUE 1, RANGE 2, HASH 5, LIST 3.
    pub fn type_codes(&self) -> Vec<i32> {
        match self {
            Scheme::Value { .. } => vec![1],
            Scheme::Range { .. } => vec![2],
            Scheme::List { .. } => vec![3],
            Scheme::Hash { .. } => vec![5],
            Scheme::Compo(l) => l.iter().flat_map(|s| s.type_codes()).collect(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Scheme::Value { .. } => "VALUE",
            Scheme::Range { .. } => "RANGE",
            Scheme::Hash { .. } => "HASH",
            Scheme::List { .. } => "LIST",
            Scheme::Compo(_) => "COMPO",
        }
    }

    /// The partition of one key at a single level.
    /// `None`: the row is skipped (`newValuePartitionPolicy=skip`).
    fn locate(&self, k: &Key, new_values: NewValues) -> Result<Option<String>, EvalError> {
        match self {
            Scheme::Value { keys, .. } => {
                if *k == Key::Null {
                    return Err(msg("a null value cannot be placed in a VALUE partition"));
                }
                if !keys.contains(k) {
                    match new_values {
                        NewValues::Add => {}
                        NewValues::Skip => return Ok(None),
                        NewValues::Fail => {
                            return Err(msg(format!(
                                "The value {} is not in the VALUE partitions (newValuePartitionPolicy=fail)",
                                k.name()
                            )))
                        }
                    }
                }
                Ok(Some(k.name()))
            }
            Scheme::Range { bounds, .. } => {
                let i = bounds.partition_point(|b| b <= k);
                if i == 0 || i == bounds.len() {
                    return Err(msg(format!(
                        "The value {} is outside the RANGE partitions [{}, {})",
                        k.name(),
                        bounds[0].name(),
                        bounds[bounds.len() - 1].name()
                    )));
                }
                Ok(Some(format!("R{}", i - 1)))
            }
            Scheme::Hash { buckets, .. } => Ok(Some(format!("Key{}", hash_bucket(k, *buckets)))),
            Scheme::List { lists, .. } => lists
                .iter()
                .position(|l| l.contains(k))
                .map(|i| Some(format!("List{i}")))
                .ok_or_else(|| msg(format!("The value {} is in no LIST partition", k.name()))),
            Scheme::Compo(_) => Err(msg("a COMPO level cannot be nested")),
        }
    }

    /// Rows grouped by partition name; `columns` holds one column per level. Rows a VALUE
    /// level skips (`NewValues::Skip`) are in no group.
    /// The first level's partition names of `values` (values outside every partition are left
    /// out): what `dropPartition` by value removes, with every partition below them. A VALUE
    /// key names its partition whether or not the scheme declared it (appends add them).
    pub fn first_level_names(&self, values: &Column) -> Result<Vec<String>, EvalError> {
        let first = match self {
            Scheme::Compo(l) => &l[0],
            s => s,
        };
        let mut out = Vec::new();
        for k in keys_of(first.types()[0], values)? {
            if let Ok(Some(n)) = first.locate(&k, NewValues::Add) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    pub fn assign(
        &self,
        columns: &[&Column],
        new_values: NewValues,
    ) -> Result<BTreeMap<String, Vec<usize>>, EvalError> {
        let levels: Vec<&Scheme> = match self {
            Scheme::Compo(l) => l.iter().collect(),
            s => vec![s],
        };
        assert_eq!(levels.len(), columns.len(), "one column per level");
        let rows = columns.first().map(|c| c.len()).unwrap_or(0);
        // Each level gives every row the index of its partition at that level (or SKIP); a
        // row's partition is the combination. No per-row strings: an append of a million rows
        // into one partition builds one name.
        let mut per_level: Vec<(Vec<u32>, Vec<String>)> = Vec::with_capacity(levels.len());
        for (s, c) in levels.iter().zip(columns) {
            per_level.push(s.level_indexes(c, new_values)?);
        }
        if let [(idx, names)] = per_level.as_slice() {
            // One level (the usual scheme): a row's partition is its index, no combinations.
            let mut groups: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
            for (row, &i) in idx.iter().enumerate() {
                if i != SKIP {
                    groups[i as usize].push(row);
                }
            }
            return Ok(names
                .iter()
                .zip(groups)
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(n, rows)| (n.clone(), rows))
                .collect());
        }
        let mut combos: std::collections::HashMap<Vec<u32>, usize> =
            std::collections::HashMap::new();
        let mut groups: Vec<(Vec<u32>, Vec<usize>)> = Vec::new();
        let mut last: Option<(Vec<u32>, usize)> = None;
        let mut combo = vec![0u32; levels.len()];
        let mut skipped = 0;
        'rows: for row in 0..rows {
            for (l, (idx, _)) in per_level.iter().enumerate() {
                if idx[row] == SKIP {
                    skipped += 1;
                    continue 'rows;
                }
                combo[l] = idx[row];
            }
            let g = match &last {
                Some((k, g)) if *k == combo => *g,
                _ => {
                    let g = *combos.entry(combo.clone()).or_insert_with(|| {
                        groups.push((combo.clone(), Vec::new()));
                        groups.len() - 1
                    });
                    last = Some((combo.clone(), g));
                    g
                }
            };
            groups[g].1.push(row);
        }
        let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (combo, rows) in groups {
            let name = combo
                .iter()
                .zip(&per_level)
                .map(|(i, (_, names))| names[*i as usize].as_str())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(name, rows);
        }
        debug_assert_eq!(out.values().map(Vec::len).sum::<usize>() + skipped, rows);
        Ok(out)
    }

    /// This level's partition of every value of `c`: an index into the returned names, or
    /// [`SKIP`] for a value `newValuePartitionPolicy=skip` leaves out. Each distinct value is
    /// located once (a symbol column's once per symbol).
    fn level_indexes(
        &self,
        c: &Column,
        new_values: NewValues,
    ) -> Result<(Vec<u32>, Vec<String>), EvalError> {
        let ty = self.types()[0];
        let mut names: Vec<String> = Vec::new();
        let mut by_name: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        let mut index_of = |name: Option<String>| -> u32 {
            match name {
                None => SKIP,
                Some(n) => *by_name.entry(n.clone()).or_insert_with(|| {
                    names.push(n);
                    (names.len() - 1) as u32
                }),
            }
        };
        if let (true, storage::column::ColumnData::Symbol { codes, base }) =
            (matches!(ty, DataType::String | DataType::Symbol), &c.data)
        {
            let mut per_code: Vec<Option<u32>> = vec![None; base.strings.len()];
            let mut out = Vec::with_capacity(codes.len());
            for code in codes {
                let slot = per_code
                    .get_mut(*code as usize)
                    .ok_or_else(|| msg("a symbol code outside its base"))?;
                let i = match slot {
                    Some(i) => *i,
                    None => {
                        let s = &base.strings[*code as usize];
                        let k = if s.is_empty() {
                            Key::Null
                        } else {
                            Key::S(s.clone())
                        };
                        let i = index_of(self.locate(&k, new_values)?);
                        *slot = Some(i);
                        i
                    }
                };
                out.push(i);
            }
            return Ok((out, names));
        }
        if matches!(ty, DataType::String | DataType::Symbol) {
            let keys = keys_of(ty, c)?;
            let mut memo: std::collections::HashMap<&Key, u32> = std::collections::HashMap::new();
            let mut out = Vec::with_capacity(keys.len());
            for k in &keys {
                let i = match memo.get(k) {
                    Some(i) => *i,
                    None => {
                        let i = index_of(self.locate(k, new_values)?);
                        memo.insert(k, i);
                        i
                    }
                };
                out.push(i);
            }
            return Ok((out, names));
        }
        // Integer keys, located once per distinct value; runs of one value (rows sorted by
        // time, as the tutorial's are) skip even the lookup.
        let keys = int_keys(ty, c)?;
        let mut memo: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
        let mut last: Option<(i64, u32)> = None;
        let mut out = Vec::with_capacity(keys.len());
        for &v in &keys {
            let i = match last {
                Some((lv, i)) if lv == v => i,
                _ => {
                    let i = match memo.get(&v) {
                        Some(i) => *i,
                        None => {
                            let k = if v == i64::MIN { Key::Null } else { Key::I(v) };
                            let i = index_of(self.locate(&k, new_values)?);
                            memo.insert(v, i);
                            i
                        }
                    };
                    last = Some((v, i));
                    i
                }
            };
            out.push(i);
        }
        Ok((out, names))
    }

    /// Whether partition `name` may hold rows whose level-`level` key satisfies `pred`.
    pub fn may_match(&self, name: &str, level: usize, pred: &Pred) -> bool {
        let (s, part) = match self {
            Scheme::Compo(l) => match (l.get(level), name.split('/').nth(level)) {
                (Some(s), Some(p)) => (s, p),
                _ => return true,
            },
            s => (s, name),
        };
        match s {
            Scheme::Value { ty, .. } => {
                let k = if matches!(ty, DataType::String | DataType::Symbol) {
                    Key::S(part.as_bytes().to_vec())
                } else {
                    match part.parse() {
                        Ok(v) => Key::I(v),
                        Err(_) => return true,
                    }
                };
                pred.admits(&k)
            }
            Scheme::Range { bounds, .. } => {
                let Some(i) = part.strip_prefix('R').and_then(|i| i.parse::<usize>().ok()) else {
                    return true;
                };
                match (bounds.get(i), bounds.get(i + 1)) {
                    (Some(lo), Some(hi)) => pred.overlaps(lo, hi),
                    _ => true,
                }
            }
            Scheme::List { lists, .. } => {
                let Some(i) = part
                    .strip_prefix("List")
                    .and_then(|i| i.parse::<usize>().ok())
                else {
                    return true;
                };
                lists
                    .get(i)
                    .is_none_or(|l| l.iter().any(|k| pred.admits(k)))
            }
            Scheme::Hash { buckets, .. } => match pred {
                Pred::In(keys) => {
                    let b = part.strip_prefix("Key").and_then(|b| b.parse::<u32>().ok());
                    b.is_none_or(|b| keys.iter().any(|k| hash_bucket(k, *buckets) == b))
                }
                _ => true,
            },
            Scheme::Compo(_) => true,
        }
    }

    /// Serialises the scheme (catalog format v2, see `dfs`).
    pub fn encode(&self, w: &mut Writer) {
        let keys = |w: &mut Writer, ks: &[Key]| {
            w.varint(ks.len() as u64);
            for k in ks {
                match k {
                    Key::Null => w.u8(0),
                    Key::I(v) => {
                        w.u8(1);
                        w.u64(*v as u64);
                    }
                    Key::S(s) => {
                        w.u8(2);
                        w.blob(s);
                    }
                }
            }
        };
        match self {
            Scheme::Value { ty, keys: ks } => {
                w.u8(1);
                w.u8(*ty as u8);
                keys(w, ks);
            }
            Scheme::Range { ty, bounds } => {
                w.u8(2);
                w.u8(*ty as u8);
                keys(w, bounds);
            }
            Scheme::List { ty, lists } => {
                w.u8(3);
                w.u8(*ty as u8);
                w.varint(lists.len() as u64);
                for l in lists {
                    keys(w, l);
                }
            }
            Scheme::Hash { ty, buckets } => {
                w.u8(5);
                w.u8(*ty as u8);
                w.u32(*buckets);
            }
            Scheme::Compo(levels) => {
                w.u8(4);
                w.varint(levels.len() as u64);
                for l in levels {
                    l.encode(w);
                }
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Scheme, String> {
        Scheme::decode_at(r, 0)
    }

    fn decode_at(r: &mut Reader<'_>, depth: usize) -> Result<Scheme, String> {
        let e = |e: storage::bytes::DecodeError| e.to_string();
        let ty = |r: &mut Reader<'_>| -> Result<DataType, String> {
            let id = r.u8().map_err(e)?;
            DataType::from_id(id).ok_or_else(|| format!("unknown type id {id} in a scheme"))
        };
        let keys = |r: &mut Reader<'_>| -> Result<Vec<Key>, String> {
            let n = r.count(r.remaining()).map_err(e)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(match r.u8().map_err(e)? {
                    0 => Key::Null,
                    1 => Key::I(r.u64().map_err(e)? as i64),
                    2 => Key::S(r.blob().map_err(e)?.to_vec()),
                    t => return Err(format!("unknown key tag {t}")),
                });
            }
            Ok(out)
        };
        Ok(match r.u8().map_err(e)? {
            1 => Scheme::Value {
                ty: ty(r)?,
                keys: keys(r)?,
            },
            2 => Scheme::Range {
                ty: ty(r)?,
                bounds: keys(r)?,
            },
            3 => {
                let ty = ty(r)?;
                let n = r.count(r.remaining()).map_err(e)?;
                let mut lists = Vec::with_capacity(n);
                for _ in 0..n {
                    lists.push(keys(r)?);
                }
                Scheme::List { ty, lists }
            }
            5 => Scheme::Hash {
                ty: ty(r)?,
                buckets: r.u32().map_err(e)?.max(1),
            },
            4 if depth == 0 => {
                let n = r.count(r.remaining()).map_err(e)?;
                let mut levels = Vec::with_capacity(n);
                for _ in 0..n {
                    levels.push(Scheme::decode_at(r, depth + 1)?);
                }
                Scheme::Compo(levels)
            }
            t => return Err(format!("unknown scheme tag {t}")),
        })
    }
}

/// What a query's conditions allow of one partitioning column, in key terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// Keys in `[lo, hi]` (either side open when `None`).
    Between(Option<Key>, Option<Key>),
    /// Keys in this set.
    In(Vec<Key>),
}

impl Pred {
    pub fn admits(&self, k: &Key) -> bool {
        match self {
            Pred::Between(lo, hi) => {
                lo.as_ref().is_none_or(|lo| k >= lo) && hi.as_ref().is_none_or(|hi| k <= hi)
            }
            Pred::In(keys) => keys.contains(k),
        }
    }

    /// Whether some key in `[lo, hi)` is admitted.
    pub fn overlaps(&self, lo: &Key, hi: &Key) -> bool {
        match self {
            Pred::Between(a, b) => {
                a.as_ref().is_none_or(|a| a < hi) && b.as_ref().is_none_or(|b| b >= lo)
            }
            Pred::In(keys) => keys.iter().any(|k| k >= lo && k < hi),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::column::ColumnData;

    fn ints(v: &[i32]) -> Column {
        Column {
            ty: DataType::Int,
            data: ColumnData::I32(v.to_vec()),
        }
    }

    #[test]
    fn every_row_lands_in_one_partition() {
        let range = Scheme::new(
            "RANGE",
            DataType::Int,
            &[Key::I(0), Key::I(10), Key::I(20)],
            vec![],
        )
        .unwrap();
        let parts = range
            .assign(&[&ints(&[1, 15, 9, 10])], NewValues::Fail)
            .unwrap();
        assert_eq!(parts["R0"], vec![0, 2]);
        assert_eq!(parts["R1"], vec![1, 3]);
        assert!(
            range.assign(&[&ints(&[20])], NewValues::Fail).is_err(),
            "upper bound is exclusive"
        );
        let hash = Scheme::Hash {
            ty: DataType::Int,
            buckets: 4,
        };
        let parts = hash
            .assign(&[&ints(&[1, 5, -3, 8])], NewValues::Fail)
            .unwrap();
        assert_eq!(parts["Key1"], vec![0, 1, 2]);
        assert_eq!(parts["Key0"], vec![3]);
        let list = Scheme::new(
            "LIST",
            DataType::Int,
            &[],
            vec![vec![Key::I(1), Key::I(2)], vec![Key::I(3)]],
        )
        .unwrap();
        assert_eq!(
            list.assign(&[&ints(&[3, 1])], NewValues::Fail).unwrap()["List1"],
            vec![0]
        );
        assert!(list.assign(&[&ints(&[4])], NewValues::Fail).is_err());
        let value = Scheme::new("VALUE", DataType::Int, &[Key::I(1)], vec![]).unwrap();
        assert!(value.assign(&[&ints(&[2])], NewValues::Fail).is_err());
        assert!(value.assign(&[&ints(&[2])], NewValues::Add).is_ok());
        let kept = value.assign(&[&ints(&[1, 2])], NewValues::Skip).unwrap();
        assert_eq!(kept.len(), 1, "the new value's row is skipped");
    }

    #[test]
    fn compo_names_join_levels_and_prune_per_level() {
        let s = Scheme::Compo(vec![
            Scheme::new("VALUE", DataType::Date, &[], vec![]).unwrap(),
            Scheme::Hash {
                ty: DataType::Int,
                buckets: 2,
            },
        ]);
        let dt = Column {
            ty: DataType::DateTime,
            data: ColumnData::I32(vec![0, 86_399, 86_400]),
        };
        let parts = s.assign(&[&dt, &ints(&[1, 2, 3])], NewValues::Add).unwrap();
        assert_eq!(
            parts.keys().collect::<Vec<_>>(),
            ["0/Key0", "0/Key1", "1/Key1"]
        );
        let day1 = Pred::Between(Some(Key::I(1)), None);
        assert!(!s.may_match("0/Key0", 0, &day1));
        assert!(s.may_match("1/Key1", 0, &day1));
        assert!(!s.may_match("0/Key0", 1, &Pred::In(vec![Key::I(3)])));
    }

    #[test]
    fn schemes_round_trip_through_the_catalog_encoding() {
        let s = Scheme::Compo(vec![
            Scheme::new("RANGE", DataType::Int, &[Key::I(-5), Key::I(7)], vec![]).unwrap(),
            Scheme::new(
                "LIST",
                DataType::String,
                &[],
                vec![vec![Key::S(b"a".to_vec())]],
            )
            .unwrap(),
            Scheme::Hash {
                ty: DataType::Symbol,
                buckets: 3,
            },
        ]);
        let mut w = Writer::default();
        s.encode(&mut w);
        assert_eq!(Scheme::decode(&mut Reader::new(&w.buf)).unwrap(), s);
    }

    #[test]
    fn partitions_are_shown_by_the_paths_dolphindb_uses() {
        let days = Scheme::Value {
            ty: DataType::Date,
            keys: vec![Key::I(19365)],
        };
        assert_eq!(days.display_path("19365"), "20230108");
        let months = Scheme::Value {
            ty: DataType::Month,
            keys: vec![],
        };
        assert_eq!(months.display_path(&(2023 * 12).to_string()), "202301M");
        let ranges = Scheme::Range {
            ty: DataType::Int,
            bounds: vec![Key::I(0), Key::I(50), Key::I(100)],
        };
        let syms = Scheme::Value {
            ty: DataType::Symbol,
            keys: vec![],
        };
        let compo = Scheme::Compo(vec![days, ranges.clone(), syms]);
        assert_eq!(compo.display_path("19365/R1/AAPL"), "20230108/50_100/AAPL");
        assert_eq!(ranges.display_path("R7"), "R7", "no such range: as it is");
    }
}
