//! DolphinDB data types and their wire ids.
//!
//! Invariant: the numeric ids are DolphinDB's own (they travel on the wire and in schemas), so
//! they must never be renumbered.

/// A DolphinDB scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DataType {
    Void = 0,
    Bool = 1,
    Char = 2,
    Short = 3,
    Int = 4,
    Long = 5,
    Date = 6,
    Month = 7,
    Time = 8,
    Minute = 9,
    Second = 10,
    DateTime = 11,
    Timestamp = 12,
    NanoTime = 13,
    NanoTimestamp = 14,
    Float = 15,
    Double = 16,
    Symbol = 17,
    String = 18,
    Uuid = 19,
    Any = 25,
    Blob = 32,
}

/// The in-memory representation of a column. Nulls are DolphinDB's sentinels: the minimum
/// value of the integer type (`i8::MIN` for BOOL/CHAR), `-f32::MAX`/`-f64::MAX` for floats
/// (NaN is stored as null), the empty string for STRING and SYMBOL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Physical {
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    /// Dictionary codes (`u32`) into the chunk's symbol base.
    Symbol,
    /// Variable-length bytes (STRING, BLOB, UUID).
    Bytes,
}

/// Null sentinels.
pub mod null {
    pub const I8: i8 = i8::MIN;
    pub const I16: i16 = i16::MIN;
    pub const I32: i32 = i32::MIN;
    pub const I64: i64 = i64::MIN;
    pub const F32: f32 = -f32::MAX;
    pub const F64: f64 = -f64::MAX;
}

pub(crate) const ALL: [DataType; 22] = [
    DataType::Void,
    DataType::Bool,
    DataType::Char,
    DataType::Short,
    DataType::Int,
    DataType::Long,
    DataType::Date,
    DataType::Month,
    DataType::Time,
    DataType::Minute,
    DataType::Second,
    DataType::DateTime,
    DataType::Timestamp,
    DataType::NanoTime,
    DataType::NanoTimestamp,
    DataType::Float,
    DataType::Double,
    DataType::Symbol,
    DataType::String,
    DataType::Uuid,
    DataType::Any,
    DataType::Blob,
];

impl DataType {
    /// The type with wire id `id`, if DolphinDB defines it and Porpoise supports it.
    pub fn from_id(id: u8) -> Option<DataType> {
        ALL.iter().copied().find(|t| *t as u8 == id)
    }

    /// The upper-case name DolphinDB scripts use (`SYMBOL`, `DATETIME`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Void => "VOID",
            DataType::Bool => "BOOL",
            DataType::Char => "CHAR",
            DataType::Short => "SHORT",
            DataType::Int => "INT",
            DataType::Long => "LONG",
            DataType::Date => "DATE",
            DataType::Month => "MONTH",
            DataType::Time => "TIME",
            DataType::Minute => "MINUTE",
            DataType::Second => "SECOND",
            DataType::DateTime => "DATETIME",
            DataType::Timestamp => "TIMESTAMP",
            DataType::NanoTime => "NANOTIME",
            DataType::NanoTimestamp => "NANOTIMESTAMP",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::Symbol => "SYMBOL",
            DataType::String => "STRING",
            DataType::Uuid => "UUID",
            DataType::Any => "ANY",
            DataType::Blob => "BLOB",
        }
    }

    /// How values of this type are held in memory and on disk.
    pub fn physical(self) -> Physical {
        match self {
            DataType::Bool | DataType::Char => Physical::I8,
            DataType::Short => Physical::I16,
            DataType::Int
            | DataType::Date
            | DataType::Month
            | DataType::Time
            | DataType::Minute
            | DataType::Second
            | DataType::DateTime => Physical::I32,
            DataType::Long | DataType::Timestamp | DataType::NanoTime | DataType::NanoTimestamp => {
                Physical::I64
            }
            DataType::Float => Physical::F32,
            DataType::Double => Physical::F64,
            DataType::Symbol => Physical::Symbol,
            DataType::String | DataType::Blob | DataType::Uuid | DataType::Void | DataType::Any => {
                Physical::Bytes
            }
        }
    }

    /// Whether a table column may have this type.
    pub fn storable(self) -> bool {
        !matches!(self, DataType::Void | DataType::Any)
    }

    /// Parses a type name, case-insensitively.
    pub fn from_name(name: &str) -> Option<DataType> {
        ALL.iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for t in ALL {
            assert_eq!(DataType::from_id(t as u8), Some(t));
            assert_eq!(DataType::from_name(t.name()), Some(t));
            assert_eq!(DataType::from_name(&t.name().to_lowercase()), Some(t));
        }
        assert_eq!(DataType::Symbol as u8, 17);
        assert_eq!(DataType::from_id(26), None);
    }
}
