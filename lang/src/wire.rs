//! The interpreter's values on DolphinDB's wire: the codec is `value::wire`, over plain data;
//! this converts at the edge. Conversion shares tables and matrices (`Rc`) and moves decoded
//! columns, so a large result is not copied on its way out or an upload on its way in.

use std::rc::Rc;

pub use value::wire::WireError;

use crate::eval::Value;

/// Serializes a value (one the wire cannot carry — a function, a handle — is refused).
pub fn encode(v: &Value, out: &mut Vec<u8>) -> Result<(), WireError> {
    value::wire::encode(&to_plain(v), out)
}

/// Deserializes one object; returns it and the bytes it took.
pub fn decode(bytes: &[u8]) -> Result<(Value, usize), WireError> {
    let (v, n) = value::wire::decode(bytes)?;
    Ok((from_plain(v), n))
}

/// The value as plain data; what only the interpreter holds becomes `Opaque`, by the name
/// the console shows for it.
pub fn to_plain(v: &Value) -> value::Value {
    use value::Value as P;
    match v {
        Value::Void => P::Void,
        Value::Scalar(c) => P::Scalar(c.clone()),
        Value::Vector(c) => P::Vector(c.clone()),
        Value::Pair(a, b) => P::Pair(Box::new(to_plain(a)), Box::new(to_plain(b))),
        Value::Tuple(items) => P::Tuple(items.iter().map(to_plain).collect()),
        Value::Matrix(m) => P::Matrix(Rc::clone(m)),
        Value::Set(c) => P::Set(c.clone()),
        Value::Dict(d) => P::Dict(d.iter().map(|(k, v)| (k.clone(), to_plain(v))).collect()),
        Value::Table(t) => P::Table(Rc::clone(t)),
        Value::Duration(n, unit) => P::Opaque(format!("{n}{unit}")),
        Value::DataSource(d) => P::Opaque(d.to_string()),
        other => P::Opaque(other.typestr()),
    }
}

/// A plain value as the interpreter's.
pub fn from_plain(v: value::Value) -> Value {
    use value::Value as P;
    match v {
        P::Void => Value::Void,
        P::Scalar(c) => Value::Scalar(c),
        P::Vector(c) => Value::Vector(c),
        P::Pair(a, b) => Value::Pair(Box::new(from_plain(*a)), Box::new(from_plain(*b))),
        P::Tuple(items) => Value::Tuple(items.into_iter().map(from_plain).collect()),
        P::Matrix(m) => Value::Matrix(m),
        P::Set(c) => Value::Set(c),
        P::Dict(d) => Value::Dict(d.into_iter().map(|(k, v)| (k, from_plain(v))).collect()),
        P::Table(t) => Value::Table(t),
        // Never decoded from the wire; as text if it ever arrives.
        P::Opaque(name) => Value::string(&name),
    }
}
