//! The console's text for the interpreter's values: `value::display` over plain data, with
//! what only the interpreter holds (functions, types, handles) shown by its name.

pub use value::display::{cell, civil_from_days};

use crate::eval::Value;

/// The console's text for a value (no trailing newline for scalars and vectors).
pub fn format(v: &Value) -> String {
    value::display::format(&crate::wire::to_plain(v))
}
