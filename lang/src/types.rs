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

const ALL: [DataType; 22] = [
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
