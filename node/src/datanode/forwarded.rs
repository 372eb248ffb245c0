//! Writes forwarded by nodes that store nothing (`coordinator::forward`): this data node
//! gathers the parts of an append (or of a rewrite, partition by partition) and, at the last
//! one, runs it through its own coordinator (the node's catalog), so it coordinates the
//! two-phase commit.
//!
//! Invariants: an append runs only when its last part arrives, in full (its parts in order;
//! a session that skipped one is refused); a session left unfinished — its sender gone — is
//! dropped after `FORWARD_IDLE_MS`, so abandoned parts do not hold memory.

use std::collections::HashMap;
use std::rc::Rc;

use lang::catalog::Catalog;
use storage::column::Column;

use super::DataNodeService;
use crate::dfs_proto::{decode_columns, tag_of, ForwardedAppend, Rewrites};
use crate::error::{ErrorCode, RemoteError};

/// A forwarded append whose parts stopped arriving this long ago is dropped.
const FORWARD_IDLE_MS: u64 = 120_000;

/// The parts of one forwarded write received so far: rows per unit — the append's one unit,
/// or each partition a rewrite replaces (name, chunk, version).
pub(super) struct Gathered {
    names: Vec<String>,
    units: Vec<(Option<Rewrites>, Vec<Column>)>,
    last_ms: u64,
}

pub(super) type Sessions = HashMap<u64, Gathered>;

impl DataNodeService {
    /// Gives this data node the catalog through which it runs forwarded appends.
    pub fn serve_appends(&self, catalog: Rc<dyn Catalog>) {
        let _ = self.appends.set(catalog);
    }

    /// One part of a forwarded append; the last runs it and answers the rows added.
    pub(super) async fn forwarded(&self, p: ForwardedAppend) -> Result<Option<u64>, RemoteError> {
        let bad = |e: String| RemoteError::new(ErrorCode::BadRequest, e);
        let Some(catalog) = self.appends.get().cloned() else {
            return Err(RemoteError::new(
                ErrorCode::DataNodeNotAvail,
                "this data node does not take forwarded appends yet",
            ));
        };
        let cols = decode_columns(&p.columns).map_err(bad)?;
        if cols.len() != p.names.len() {
            return Err(bad(format!(
                "{} column names for {} columns",
                p.names.len(),
                cols.len()
            )));
        }
        let now = rt::time::unix_time_ms();
        let gathered = {
            let mut sessions = self.forwarded.borrow_mut();
            sessions.retain(|_, g| now.saturating_sub(g.last_ms) < FORWARD_IDLE_MS);
            match sessions.get_mut(&p.session) {
                Some(g) => {
                    if g.names != p.names {
                        sessions.remove(&p.session);
                        return Err(bad("a forwarded append changed its columns".into()));
                    }
                    match g.units.last_mut() {
                        Some((unit, have)) if *unit == p.rewrite => {
                            for (have, more) in have.iter_mut().zip(&cols) {
                                if let Err(e) = have.append(more) {
                                    sessions.remove(&p.session);
                                    return Err(bad(e));
                                }
                            }
                        }
                        _ => g.units.push((p.rewrite.clone(), cols)),
                    }
                    g.last_ms = now;
                }
                None => {
                    sessions.insert(
                        p.session,
                        Gathered {
                            names: p.names,
                            units: vec![(p.rewrite.clone(), cols)],
                            last_ms: now,
                        },
                    );
                }
            }
            if !p.last {
                return Ok(None);
            }
            sessions.remove(&p.session).expect("inserted above")
        };
        let failed =
            |e: lang::eval::EvalError| RemoteError::new(ErrorCode::AppendFailed, e.to_string());
        if gathered.units.iter().any(|(u, _)| u.is_some()) {
            let mut rewrites = Vec::with_capacity(gathered.units.len());
            for (unit, cols) in gathered.units {
                let (name, chunk, version) =
                    unit.ok_or_else(|| bad("a forwarded rewrite mixes in an append".into()))?;
                rewrites.push((
                    lang::catalog::Partition {
                        name,
                        chunk,
                        version,
                    },
                    cols,
                ));
            }
            return catalog
                .rewrite(&p.db, &p.table, rewrites, p.tag.map(tag_of))
                .await
                .map(|()| Some(0))
                .map_err(failed);
        }
        let (_, columns) = gathered
            .units
            .into_iter()
            .next()
            .expect("one unit at least");
        let table = lang::eval::Table {
            columns: gathered.names.into_iter().zip(columns).collect(),
        };
        catalog
            .append_tagged(&p.db, &p.table, &table, p.tag.map(tag_of))
            .await
            .map(|rows| Some(rows as u64))
            .map_err(failed)
    }
}
