//! `getServerLogLength([nodeAlias])` and `getServerLog(length, offset, [fromStart=true],
//! [nodeAlias])`: a node's own log file, as DolphinDB's web Log page and its data-collection
//! scripts read it — the size in bytes, then a byte window of it as a STRING vector of lines in
//! file order. With `fromStart=false` the window ends `offset` bytes before the end of the file.
//! Another node's alias is answered by that node (as `rpc` would), so any node can show any
//! node's log.
//!
//! Invariant: one call reads at most [`LOG_WINDOW_BYTES_MAX`] bytes, whatever it asks for; a
//! line cut by the window's start or end comes back cut, never joined with another.

use storage::column::Column;
use storage::types::DataType;

use super::builtins::{scalar_i64, scalar_string};
use super::interp::Interp;
use super::value::{Builtin, Value};
use super::EvalError;
use crate::parse::Pos;

pub(super) const NAMES: &[&str] = &["getServerLogLength", "getServerLog"];

/// The most one `getServerLog` call reads (DolphinDB's data-collection script asks for 5 MB).
pub const LOG_WINDOW_BYTES_MAX: u64 = 64 << 20;

pub(super) async fn call(
    it: &mut Interp,
    name: &str,
    args: Vec<Value>,
    pos: Pos,
) -> Result<Value, EvalError> {
    let alias_at = if name == "getServerLogLength" { 0 } else { 3 };
    if let Some(alias) = args.get(alias_at).map(scalar_string).transpose()? {
        if !alias.is_empty() && alias != it.node.alias {
            // That node's own answer, through the cluster.
            let f = Value::Builtin(std::rc::Rc::new(Builtin {
                name: name.to_string(),
                bound: Vec::new(),
                bound_exprs: Vec::new(),
            }));
            let rest = args[..alias_at].to_vec();
            return super::cluster_fns::run_on(it, &alias, f, rest, pos).await;
        }
    }
    let Some(path) = it.node.log_file.clone() else {
        return Err(EvalError::msg(format!(
            "The function [{name}] needs the node to log to a file (-logFile)"
        )));
    };
    let file = rt::disk::File::open(&path, rt::disk::OpenMode::Existing)
        .await
        .map_err(|e| EvalError::msg(format!("{name}: cannot open {}: {e}", path.display())))?;
    let size = file
        .size()
        .await
        .map_err(|e| EvalError::msg(format!("{name}: {e}")))?;
    if name == "getServerLogLength" {
        return Ok(Value::int(size as i64));
    }
    let (length, offset) = match (args.first(), args.get(1)) {
        (Some(l), Some(o)) => (scalar_i64(l)?, scalar_i64(o)?),
        _ => {
            return Err(EvalError::msg(
                "The function [getServerLog] needs a length and an offset",
            ))
        }
    };
    if length < 0 || offset < 0 {
        return Err(EvalError::msg(
            "getServerLog: length and offset must not be negative",
        ));
    }
    let from_start = match args.get(2) {
        None | Some(Value::Void) => true,
        Some(v) => it.truthy(v)?,
    };
    let (start, end) = window(size, length as u64, offset as u64, from_start);
    let bytes = file
        .read_at(start, (end - start) as usize)
        .await
        .map_err(|e| EvalError::msg(format!("getServerLog: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    Ok(Value::Vector(Column::from_strings(
        DataType::String,
        &lines,
    )))
}

/// The byte range `[start, end)` a request reads from a file of `size` bytes.
fn window(size: u64, length: u64, offset: u64, from_start: bool) -> (u64, u64) {
    let length = length.min(LOG_WINDOW_BYTES_MAX);
    let start = if from_start {
        offset.min(size)
    } else {
        size.saturating_sub(offset).saturating_sub(length)
    };
    let end = start.saturating_add(length).min(if from_start {
        size
    } else {
        size.saturating_sub(offset)
    });
    debug_assert!(start <= end && end <= size);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::{window, LOG_WINDOW_BYTES_MAX};

    #[test]
    fn a_window_stays_inside_the_file_and_under_the_limit() {
        assert_eq!(window(100, 10, 0, true), (0, 10));
        assert_eq!(window(100, 10, 95, true), (95, 100));
        assert_eq!(window(100, 10, 500, true), (100, 100));
        assert_eq!(window(100, 10, 0, false), (90, 100), "the last ten bytes");
        assert_eq!(window(100, 10, 5, false), (85, 95));
        assert_eq!(window(100, 500, 0, false), (0, 100));
        assert_eq!(window(100, 10, 500, false), (0, 0));
        let big = 10 * LOG_WINDOW_BYTES_MAX;
        assert_eq!(window(big, u64::MAX, 0, true), (0, LOG_WINDOW_BYTES_MAX));
    }
}
