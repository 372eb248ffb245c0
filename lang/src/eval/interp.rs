//! Statement execution and expression evaluation.

use std::collections::HashMap;
use std::rc::Rc;

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::value::{Builtin, Function, Value};
use super::{ops, EvalError};
use crate::parse::ast::*;
use crate::parse::{parse, Pos};

/// Deepest call nesting: a guard against runaway recursion that fits a 2 MiB thread stack
/// even in debug builds.
pub const CALL_DEPTH_MAX: usize = 32;

/// Deepest evaluation nesting (expressions and calls together), for the same reason.
pub const EVAL_DEPTH_MAX: usize = 160;

/// Evaluated arguments beside their (possibly named) expressions.
pub(crate) type EvaluatedArgs = (Vec<Value>, Vec<(Option<String>, Expr)>);

enum Flow {
    Normal(Value),
    Return(Value),
}

/// One session's interpreter: variables, printed output, and a seeded RNG.
pub struct Interp {
    globals: HashMap<String, Value>,
    locals: Vec<HashMap<String, Value>>,
    /// Table columns in scope for SQL expressions, each with the depth of `locals` it was
    /// opened at: columns shadow variables only in the function body that runs the query, so
    /// a user function called from a query does not see them, and the query still sees the
    /// caller's local variables.
    ///
    /// A scope is tables, searched in order, whose columns are looked up (and copied) only
    /// when an expression names them: a query over 3 of a table's 9 columns copies those 3.
    columns: Vec<(usize, Vec<Rc<super::value::Table>>)>,
    /// Text printed by `print`, in order (the server returns it as DolphinDB `MSG` blocks).
    pub output: Vec<String>,
    pub(crate) rng: rt::rand::Rng,
    pub(crate) user: Option<String>,
    /// The node this session runs on (for getNodeAlias, getClusterPerf, rpc).
    pub node: NodeInfo,
    /// The node's `dfs://` databases, when it serves them.
    pub dfs: Option<std::rc::Rc<dyn crate::catalog::Catalog>>,
    /// The node's accounts (`login`, `changePwd`, ...).
    pub users: std::rc::Rc<crate::users::Users>,
    /// The other nodes, when this session runs in a cluster (`rpc`, `pnodeRun`,
    /// `getClusterPerf`).
    pub cluster: Option<std::rc::Rc<dyn crate::cluster::Cluster>>,
    /// Partitions the last query over a partitioned table read (after pruning).
    pub partitions_read: usize,
    /// Joins run partition by partition where the chunks are (`eval::copartition`), so far.
    pub pushed_joins: usize,
    /// The client request being run, as the official client tags it in high-availability
    /// mode (its uuid and sequence number, negative when resent after a failover), and how
    /// many dfs writes it made so far: each write's [`crate::catalog::WriteTag`].
    request: Option<(String, i64)>,
    writes_in_request: u32,
    depth: usize,
    eval_depth: usize,
}

/// What a session knows about its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub alias: String,
    pub host: String,
    pub port: u16,
    /// DolphinDB's mode code in getClusterPerf: 0 data node, 1 agent, 2 controller, 3 single, 4 compute node.
    pub mode_code: u8,
    pub controller_alias: String,
    pub max_connections: usize,
    pub worker_num: usize,
    /// The node's `-logFile`, which getServerLog reads.
    pub log_file: Option<std::path::PathBuf>,
}

impl Default for NodeInfo {
    fn default() -> Self {
        NodeInfo {
            alias: "local8848".into(),
            host: "localhost".into(),
            port: 8848,
            mode_code: 3,
            controller_alias: String::new(),
            max_connections: 512,
            worker_num: 1,
            log_file: None,
        }
    }
}

fn temporal_type(id: u8) -> DataType {
    DataType::from_id(id).unwrap_or(DataType::Long)
}

pub(crate) fn lit_value(l: &Lit) -> Value {
    match l {
        Lit::Int(v, s) => match s {
            Some('h') => Value::scalar(DataType::Short, ColumnData::I16(vec![*v as i16])),
            Some('c') => Value::scalar(DataType::Char, ColumnData::I8(vec![*v as i8])),
            Some('i') => Value::scalar(DataType::Int, ColumnData::I32(vec![*v as i32])),
            Some('l') => Value::scalar(DataType::Long, ColumnData::I64(vec![*v])),
            _ if *v > i32::MIN as i64 && *v <= i32::MAX as i64 => {
                Value::scalar(DataType::Int, ColumnData::I32(vec![*v as i32]))
            }
            _ => Value::scalar(DataType::Long, ColumnData::I64(vec![*v])),
        },
        Lit::Double(v, Some('f')) => {
            Value::scalar(DataType::Float, ColumnData::F32(vec![*v as f32]))
        }
        Lit::Double(v, _) => Value::double(*v),
        Lit::Str(s) => Value::string(s),
        Lit::Symbol(s) => Value::Scalar(Column::from_strings(DataType::String, &[s])),
        Lit::SymbolVec(v) => Value::Vector(Column::from_strings(DataType::String, v)),
        Lit::Bool(b) => Value::bool(*b),
        Lit::Null => Value::Void,
        Lit::Duration(n, u) => Value::Duration(*n, u),
        Lit::Temporal(t, v) => {
            let ty = temporal_type(*t);
            let data = match ty.physical() {
                storage::types::Physical::I64 => ColumnData::I64(vec![*v]),
                _ => ColumnData::I32(vec![*v as i32]),
            };
            Value::scalar(ty, data)
        }
    }
}

/// Joins scalars/vectors of one type into a vector.
pub(crate) fn to_vector(items: Vec<Value>) -> Result<Value, EvalError> {
    // NULL elements take the type of the first typed element: `1.5 NULL 2.5` is DOUBLE.
    let items = match items.iter().find_map(|v| v.column()).map(|c| c.ty) {
        Some(ty) if items.iter().any(|v| matches!(v, Value::Void)) => items
            .into_iter()
            .map(|v| match v {
                Value::Void => Value::Scalar(Column::nulls(ty, 1)),
                v => v,
            })
            .collect(),
        _ => items,
    };
    let cols: Vec<&Column> = items.iter().filter_map(|v| v.column()).collect();
    if cols.len() != items.len() || cols.is_empty() {
        return Ok(Value::Tuple(items));
    }
    let ty = cols[0].ty;
    if cols.iter().any(|c| c.ty != ty) {
        // Mixed numeric types widen to the widest; anything else stays a tuple.
        if cols.iter().all(|c| ops::to_num(c).is_ok()) {
            let float = cols
                .iter()
                .any(|c| matches!(c.ty, DataType::Double | DataType::Float));
            let target = if float {
                DataType::Double
            } else {
                DataType::Long
            };
            let mut out = Column::empty(target);
            for c in cols {
                out.append(&super::builtins::cast(c, target)?)
                    .map_err(EvalError::msg)?;
            }
            return Ok(Value::Vector(out));
        }
        return Ok(Value::Tuple(items));
    }
    let mut out = Column::empty(ty);
    for c in cols {
        out.append(c).map_err(EvalError::msg)?;
    }
    Ok(Value::Vector(out))
}

impl Default for Interp {
    fn default() -> Self {
        Interp::new(rt::rand::seed())
    }
}

impl Interp {
    pub fn new(seed: u64) -> Interp {
        Interp {
            globals: HashMap::new(),
            locals: Vec::new(),
            columns: Vec::new(),
            output: Vec::new(),
            rng: rt::rand::Rng::with_seed(seed),
            user: None,
            node: NodeInfo::default(),
            dfs: None,
            cluster: None,
            partitions_read: 0,
            pushed_joins: 0,
            request: None,
            writes_in_request: 0,
            users: crate::users::default_users(),
            depth: 0,
            eval_depth: 0,
        }
    }

    /// Marks the session as the administrator's (the node's own start-up script).
    pub fn run_as_admin(&mut self) {
        self.user = Some("admin".into());
    }

    /// Parses and runs `src`; returns the value of the last statement.
    pub async fn run(&mut self, src: &str) -> Result<Value, EvalError> {
        let stmts = parse(src)?;
        match self.exec(&stmts).await? {
            Flow::Normal(v) | Flow::Return(v) => Ok(v),
        }
    }

    /// Runs a script that needs no I/O (no DFS access) to completion without a runtime — for
    /// tests and tools. A script that would wait for I/O fails instead of blocking.
    pub fn run_now(&mut self, src: &str) -> Result<Value, EvalError> {
        use std::future::Future;
        let mut fut = std::pin::pin!(self.run(src));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Err(EvalError::msg(
                "the script waits for I/O: run it on the node's runtime",
            )),
        }
    }

    /// The value of variable `name`, if defined.
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.locals
            .last()
            .and_then(|l| l.get(name))
            .or_else(|| self.globals.get(name))
    }

    /// Binds a session variable (uploads, function arguments).
    pub fn set(&mut self, name: &str, v: Value) {
        self.globals.insert(name.to_string(), v);
    }

    /// Forgets a session variable.
    /// The session's variables (not the interpreter's own `__porpoise` temporaries).
    pub(crate) fn global_vars(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.globals
            .iter()
            .filter(|(k, _)| !k.starts_with("__porpoise"))
    }

    pub fn unset(&mut self, name: &str) {
        self.globals.remove(name);
    }

    /// Starts running a client request tagged `(uuid, seq)` (or untagged): its dfs writes are
    /// tagged in order, so a resend (negative `seq`) skips the ones already committed.
    pub fn begin_request(&mut self, tag: Option<(String, i64)>) {
        self.request = tag;
        self.writes_in_request = 0;
    }

    /// The tag of the request's next dfs write, and — when the request is a resend whose
    /// first attempt committed that write — the rows it wrote then, so the write is answered
    /// and not applied again.
    pub(crate) async fn next_write(
        &mut self,
        dfs: &dyn crate::catalog::Catalog,
    ) -> Result<(Option<crate::catalog::WriteTag>, Option<usize>), EvalError> {
        let Some((client, seq)) = self.request.as_ref() else {
            return Ok((None, None));
        };
        let (tag, resend) = (
            crate::catalog::WriteTag {
                client: client.clone(),
                request: seq.unsigned_abs(),
                write: self.writes_in_request,
            },
            *seq < 0,
        );
        self.writes_in_request += 1;
        let done = if resend {
            dfs.written(&tag).await?
        } else {
            None
        };
        Ok((Some(tag), done))
    }

    /// Forgets the temporary argument variables of an API `function` call.
    pub fn clear_args(&mut self) {
        self.globals.retain(|k, _| !k.starts_with("__porpoise_arg"));
    }

    /// Brings tables' columns into scope for SQL expressions (see `columns`).
    pub(crate) fn push_tables(&mut self, tables: Vec<Rc<super::value::Table>>) {
        self.columns.push((self.locals.len(), tables));
    }

    /// The column `name` of the tables in scope (at this call depth), if any.
    fn scoped_column(&self, name: &str) -> Option<Value> {
        match self.columns.last() {
            Some((depth, tables)) if *depth == self.locals.len() => tables
                .iter()
                .find_map(|t| t.column(name))
                .map(|c| Value::Vector(c.clone())),
            _ => None,
        }
    }

    pub(crate) fn pop_scope(&mut self) {
        self.columns.pop();
    }

    fn set_var(&mut self, name: &str, v: Value) {
        match self.locals.last_mut() {
            Some(l) => {
                l.insert(name.to_string(), v);
            }
            None => {
                self.globals.insert(name.to_string(), v);
            }
        }
    }

    async fn exec(&mut self, stmts: &[Stmt]) -> Result<Flow, EvalError> {
        let mut last = Value::Void;
        for s in stmts {
            match Box::pin(self.stmt(s)).await.map_err(|e| e.at(s.pos))? {
                Flow::Return(v) => return Ok(Flow::Return(v)),
                Flow::Normal(v) => last = v,
            }
        }
        Ok(Flow::Normal(last))
    }

    pub(crate) fn truthy(&self, v: &Value) -> Result<bool, EvalError> {
        match v.column() {
            Some(c) if c.len() == 1 => Ok(ops::scalar_f64(c, 0)
                .map(|x| x != 0.0 && x.is_finite())
                .unwrap_or(false)),
            _ => Err(EvalError::msg("a condition must be a scalar")),
        }
    }

    async fn stmt(&mut self, s: &Stmt) -> Result<Flow, EvalError> {
        match &s.kind {
            StmtKind::Expr(e) => Ok(Flow::Normal(self.eval(e).await?)),
            StmtKind::Assign { targets, value } => {
                let v = self.eval(value).await?;
                if targets.len() == 1 {
                    self.assign(&targets[0], v).await?;
                } else {
                    let parts = match v {
                        Value::Tuple(items) if items.len() == targets.len() => items,
                        other if other.size() == targets.len() => (0..targets.len())
                            .map(|i| super::builtins::element(&other, i))
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err(EvalError::msg(format!(
                                "cannot assign to {} variables",
                                targets.len()
                            )))
                        }
                    };
                    for (t, p) in targets.iter().zip(parts) {
                        self.assign(t, p).await?;
                    }
                }
                Ok(Flow::Normal(Value::Void))
            }
            StmtKind::Def { name, params, body } => {
                let f = Function {
                    name: name.clone(),
                    params: params.clone(),
                    body: Rc::new(body.clone()),
                    bound: Vec::new(),
                };
                self.globals.insert(name.clone(), Value::Func(Rc::new(f)));
                Ok(Flow::Normal(Value::Void))
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.eval(cond).await?;
                if self.truthy(&c)? {
                    self.exec(then).await
                } else {
                    self.exec(otherwise).await
                }
            }
            StmtKind::For { var, iter, body } => {
                let it = self.eval(iter).await?;
                for i in 0..it.size() {
                    let v = super::builtins::element(&it, i)?;
                    self.set_var(var, v);
                    if let Flow::Return(v) = self.exec(body).await? {
                        return Ok(Flow::Return(v));
                    }
                }
                Ok(Flow::Normal(Value::Void))
            }
            StmtKind::DoWhile { body, cond } => loop {
                if let Flow::Return(v) = self.exec(body).await? {
                    return Ok(Flow::Return(v));
                }
                let c = self.eval(cond).await?;
                if !self.truthy(&c)? {
                    return Ok(Flow::Normal(Value::Void));
                }
            },
            StmtKind::While { cond, body } => loop {
                let c = self.eval(cond).await?;
                if !self.truthy(&c)? {
                    return Ok(Flow::Normal(Value::Void));
                }
                if let Flow::Return(v) = self.exec(body).await? {
                    return Ok(Flow::Return(v));
                }
            },
            StmtKind::Return(e) => Ok(Flow::Return(match e {
                Some(e) => self.eval(e).await?,
                None => Value::Void,
            })),
            StmtKind::Update {
                table,
                sets,
                filters,
            } => super::dml::update(self, table, sets, filters)
                .await
                .map(Flow::Normal),
            StmtKind::Delete { table, filters } => super::dml::delete(self, table, filters)
                .await
                .map(Flow::Normal),
            StmtKind::Insert {
                table,
                columns,
                values,
            } => super::dml::insert(self, table, columns, values)
                .await
                .map(Flow::Normal),
        }
    }

    async fn assign(&mut self, target: &Expr, v: Value) -> Result<(), EvalError> {
        match &target.kind {
            ExprKind::Ident(name) => {
                self.set_var(name, v);
                Ok(())
            }
            _ => Err(EvalError::msg("only variables can be assigned so far").at(target.pos)),
        }
    }

    pub(crate) async fn eval(&mut self, e: &Expr) -> Result<Value, EvalError> {
        if self.eval_depth >= EVAL_DEPTH_MAX {
            let msg = format!("expressions and calls nested deeper than {EVAL_DEPTH_MAX}");
            return Err(EvalError::msg(msg).at(e.pos));
        }
        self.eval_depth += 1;
        // Boxed: evaluation recurses (expressions, calls, function bodies).
        let r = Box::pin(self.eval_inner(e))
            .await
            .map_err(|err| err.at(e.pos));
        self.eval_depth -= 1;
        r
    }

    async fn eval_inner(&mut self, e: &Expr) -> Result<Value, EvalError> {
        match &e.kind {
            ExprKind::Lit(l) => Ok(lit_value(l)),
            ExprKind::Ident(name) => self.lookup(name),
            ExprKind::Star => Err(EvalError::msg(
                "* is only allowed in select lists and count(*)",
            )),
            ExprKind::Vector(items) => {
                let mut vals = Vec::with_capacity(items.len());
                for i in items {
                    vals.push(self.eval(i).await?);
                }
                if vals.iter().all(|v| matches!(v, Value::Type(_))) {
                    return Ok(Value::Tuple(vals));
                }
                to_vector(vals)
            }
            ExprKind::Tuple(items) => {
                let mut vals = Vec::with_capacity(items.len());
                for i in items {
                    vals.push(self.eval(i).await?);
                }
                Ok(Value::Tuple(vals))
            }
            ExprKind::Dict(entries) => {
                let mut d = std::collections::BTreeMap::new();
                for (k, v) in entries {
                    let k = super::builtins::scalar_string(&self.eval(k).await?)?;
                    d.insert(k, self.eval(v).await?);
                }
                Ok(Value::Dict(d))
            }
            ExprKind::Unary { op, expr } => {
                let v = self.eval(expr).await?;
                if let (Value::Duration(n, u), "neg") = (&v, *op) {
                    return Ok(Value::Duration(-n, u));
                }
                self.call_builtin(
                    if *op == "neg" { "neg" } else { "not" },
                    vec![v],
                    &[],
                    e.pos,
                )
                .await
            }
            ExprKind::Binary { op, left, right } => {
                let (l, r) = (self.eval(left).await?, self.eval(right).await?);
                let out = self.binary(op, l, r).await?;
                // `x <- y` appends to `x` itself.
                if let ("<-", ExprKind::Ident(var)) = (op.as_str(), &left.kind) {
                    self.set_var(var, out.clone());
                }
                Ok(out)
            }
            ExprKind::Call { func, args } => {
                let f = match &func.kind {
                    ExprKind::Ident(name) if self.var(name).is_none() => {
                        Value::Builtin(Rc::new(Builtin {
                            name: name.clone(),
                            bound: Vec::new(),
                            bound_exprs: Vec::new(),
                        }))
                    }
                    _ => self.eval(func).await?,
                };
                let (vals, exprs) = self.eval_args(args).await?;
                let out = self.apply(f, vals, &exprs, e.pos).await?;
                // `nullFill!(x, 0)` changes `x` itself, as `x.nullFill!(0)` does.
                if let (ExprKind::Ident(name), Some(ExprKind::Ident(var))) =
                    (&func.kind, args.first().map(|a| &a.value.kind))
                {
                    if name.ends_with('!') && !matches!(out, Value::Void) && self.var(var).is_some()
                    {
                        self.set_var(var, out.clone());
                    }
                }
                Ok(out)
            }
            ExprKind::Method { obj, name, args } => {
                let o = self.eval(obj).await?;
                match args {
                    None => {
                        if let Value::Table(t) = &o {
                            if let Some(c) = t.column(name) {
                                return Ok(Value::Vector(c.clone()));
                            }
                        }
                        if let Value::Dict(d) = &o {
                            if let Some(v) = d.get(name) {
                                return Ok(v.clone());
                            }
                        }
                        self.call_named(name, vec![o], &[obj.as_ref().clone()], e.pos)
                            .await
                    }
                    Some(args) => {
                        let (mut vals, mut exprs) = self.eval_args(args).await?;
                        vals.insert(0, o);
                        exprs.insert(0, (None, obj.as_ref().clone()));
                        let f = Value::Builtin(Rc::new(Builtin {
                            name: name.clone(),
                            bound: Vec::new(),
                            bound_exprs: Vec::new(),
                        }));
                        let f = self.var(name).cloned().unwrap_or(f);
                        let out = self.apply(f, vals, &exprs, e.pos).await?;
                        // `x.join!(y)` changes `x` itself (a partitioned table's `append!` changes
                        // the stored table and returns nothing: `x` stays its handle).
                        if let (true, ExprKind::Ident(var)) = (name.ends_with('!'), &obj.kind) {
                            if !matches!(out, Value::Void) {
                                self.set_var(var, out.clone());
                            }
                        }
                        Ok(out)
                    }
                }
            }
            ExprKind::Index { obj, index } => {
                let o = self.eval(obj).await?;
                let idx = self.eval(&index[0]).await?;
                super::builtins::index(&o, &idx)
            }
            ExprKind::Partial { func, args } => {
                let mut bound = Vec::with_capacity(args.len());
                for a in args {
                    bound.push(match a {
                        Some(x) => Some(self.eval(x).await?),
                        None => None,
                    });
                }
                let f = match &func.kind {
                    ExprKind::Ident(name) => self.var(name).cloned().unwrap_or_else(|| {
                        Value::Builtin(Rc::new(Builtin {
                            name: name.clone(),
                            bound: Vec::new(),
                            bound_exprs: Vec::new(),
                        }))
                    }),
                    _ => self.eval(func).await?,
                };
                let bound_exprs = args.clone();
                Ok(match f {
                    Value::Builtin(b) => Value::Builtin(Rc::new(Builtin {
                        name: b.name.clone(),
                        bound,
                        bound_exprs,
                    })),
                    Value::Func(u) => Value::Func(Rc::new(Function {
                        bound,
                        ..(*u).clone()
                    })),
                    _ => return Err(EvalError::msg("only functions can be partially applied")),
                })
            }
            ExprKind::Lambda { params, body } => Ok(Value::Func(Rc::new(Function {
                name: "lambda".into(),
                params: params.clone(),
                body: Rc::new(body.clone()),
                bound: Vec::new(),
            }))),
            ExprKind::Alias { expr, .. } => self.eval(expr).await,
            ExprKind::Select(s) => super::sql::select(self, s).await,
            ExprKind::Meta(inner) => Ok(Value::Code(Rc::new(inner.as_ref().clone()))),
        }
    }

    fn lookup(&self, name: &str) -> Result<Value, EvalError> {
        if let Some(v) = self.scoped_column(name) {
            return Ok(v);
        }
        if let Some(v) = self.var(name) {
            return Ok(v.clone());
        }
        if let Some(t) =
            DataType::from_name(name).filter(|_| name.chars().all(|c| c.is_ascii_uppercase()))
        {
            return Ok(Value::Type(t));
        }
        if matches!(name, "VALUE" | "RANGE" | "HASH" | "LIST" | "COMPO") {
            return Ok(Value::PartitionType(name.to_string()));
        }
        if super::builtins::is_builtin(name) {
            return Ok(Value::Builtin(Rc::new(Builtin {
                name: name.to_string(),
                bound: Vec::new(),
                bound_exprs: Vec::new(),
            })));
        }
        Err(EvalError::msg(format!(
            "Syntax Error: Cannot recognize the token {name}"
        )))
    }

    async fn eval_args(&mut self, args: &[Arg]) -> Result<EvaluatedArgs, EvalError> {
        let mut vals = Vec::with_capacity(args.len());
        let mut exprs = Vec::with_capacity(args.len());
        for a in args {
            vals.push(match &a.value.kind {
                ExprKind::Star => Value::Void,
                _ => self.eval(&a.value).await?,
            });
            exprs.push((a.name.clone(), a.value.clone()));
        }
        Ok((vals, exprs))
    }

    pub(crate) async fn binary(
        &mut self,
        op: &str,
        l: Value,
        r: Value,
    ) -> Result<Value, EvalError> {
        let pos = Pos { line: 0, col: 0 };
        match op {
            ":" => Ok(Value::Pair(Box::new(l), Box::new(r))),
            ".." => self.call_builtin("seq", vec![l, r], &[], pos).await,
            "$" => self.call_builtin("cast", vec![l, r], &[], pos).await,
            "<-" => self.call_builtin("join", vec![l, r], &[], pos).await,
            "**" => self.call_builtin("pow", vec![l, r], &[], pos).await,
            "in" | "like" | "between" | "join" => self.call_builtin(op, vec![l, r], &[], pos).await,
            _ => {
                let (Some(a), Some(b)) = (l.column(), r.column()) else {
                    return Err(EvalError::msg(format!(
                        "the operator {op} does not apply to {} and {}",
                        l.typestr(),
                        r.typestr()
                    )));
                };
                let col = match op {
                    "+" | "-" | "*" | "/" | "\\" | "%" => ops::arith(op, a, b)?,
                    "<" | "<=" | ">" | ">=" | "==" | "=" | "!=" | "<>" => ops::compare(op, a, b)?,
                    "&&" | "||" => ops::logic(op, a, b)?,
                    _ => {
                        return Err(EvalError::msg(format!(
                            "the operator {op} is not supported yet"
                        )))
                    }
                };
                Ok(
                    if matches!(l, Value::Scalar(_)) && matches!(r, Value::Scalar(_)) {
                        Value::Scalar(col)
                    } else {
                        Value::Vector(col)
                    },
                )
            }
        }
    }

    async fn call_named(
        &mut self,
        name: &str,
        args: Vec<Value>,
        exprs: &[Expr],
        pos: Pos,
    ) -> Result<Value, EvalError> {
        let exprs: Vec<(Option<String>, Expr)> = exprs.iter().map(|e| (None, e.clone())).collect();
        let f = self.var(name).cloned().unwrap_or_else(|| {
            Value::Builtin(Rc::new(Builtin {
                name: name.to_string(),
                bound: Vec::new(),
                bound_exprs: Vec::new(),
            }))
        });
        self.apply(f, args, &exprs, pos).await
    }

    pub(crate) async fn call_builtin(
        &mut self,
        name: &str,
        args: Vec<Value>,
        exprs: &[(Option<String>, Expr)],
        pos: Pos,
    ) -> Result<Value, EvalError> {
        // `nullFill!(x, 0)` is `nullFill(x, 0)` whose result replaces `x` (see the callers).
        if let Some(base) = name.strip_suffix('!') {
            if !super::builtins::is_builtin(name) && super::builtins::is_builtin(base) {
                return super::builtins::call(self, base, args, exprs, pos).await;
            }
        }
        super::builtins::call(self, name, args, exprs, pos).await
    }

    /// Calls a function value with arguments (filling partial-application slots first).
    pub(crate) async fn apply(
        &mut self,
        f: Value,
        args: Vec<Value>,
        exprs: &[(Option<String>, Expr)],
        pos: Pos,
    ) -> Result<Value, EvalError> {
        fn fill(bound: &[Option<Value>], args: Vec<Value>) -> Vec<Value> {
            if bound.is_empty() {
                return args;
            }
            let mut rest = args.into_iter();
            let mut out: Vec<Value> = bound
                .iter()
                .map(|b| b.clone().or_else(|| rest.next()).unwrap_or(Value::Void))
                .collect();
            out.extend(rest);
            out
        }
        match f {
            Value::Builtin(b) => {
                if b.bound.is_empty() {
                    return self.call_builtin(&b.name, args, exprs, pos).await;
                }
                // Bound slots keep their expressions; open slots take the call's.
                let mut open = exprs.iter().cloned();
                let filled: Vec<(Option<String>, Expr)> = b
                    .bound_exprs
                    .iter()
                    .map(|e| match e {
                        Some(e) => Some((None, e.clone())),
                        None => open.next(),
                    })
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default();
                let args = fill(&b.bound, args);
                self.call_builtin(&b.name, args, &filled, pos).await
            }
            Value::Func(u) => {
                let args = fill(&u.bound, args);
                if args.len() != u.params.len() {
                    return Err(EvalError::msg(format!(
                        "The function [{}] expects {} argument(s), but the actual number of arguments is {}",
                        u.name,
                        u.params.len(),
                        args.len()
                    )));
                }
                if self.depth >= super::interp::CALL_DEPTH_MAX {
                    return Err(EvalError::msg(format!(
                        "calls nested deeper than {CALL_DEPTH_MAX}"
                    )));
                }
                self.depth += 1;
                self.locals
                    .push(u.params.iter().cloned().zip(args).collect());
                let r = self.exec(&u.body).await;
                self.locals.pop();
                self.depth -= 1;
                match r? {
                    Flow::Return(v) | Flow::Normal(v) => Ok(v),
                }
            }
            other => Err(EvalError::msg(format!(
                "a {} is not a function",
                other.typestr()
            ))),
        }
    }
}
