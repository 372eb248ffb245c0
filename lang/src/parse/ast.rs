//! The syntax tree of DolphinDB script.

use super::Pos;

/// A literal value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// An integer; the suffix (`h` SHORT, `i` INT, `l` LONG, `c` CHAR) if any.
    Int(i64, Option<char>),
    /// A floating-point number; `Some('f')` for FLOAT.
    Double(f64, Option<char>),
    Str(String),
    Symbol(String),
    SymbolVec(Vec<String>),
    Bool(bool),
    Null,
    /// A temporal literal: DolphinDB type id and value.
    Temporal(u8, i64),
    /// A duration, `5m`: the count and its unit.
    Duration(i64, &'static str),
}

/// A function argument, possibly named (`tableName=tbName`).
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Lit(Lit),
    Ident(String),
    /// `*` as an argument (`count(*)`) or a select item.
    Star,
    /// `[a, b, c]`, or literals side by side (`1 2 3`).
    Vector(Vec<Expr>),
    /// `(a, b, c)`.
    Tuple(Vec<Expr>),
    /// `{k: v, ...}`.
    Dict(Vec<(Expr, Expr)>),
    Unary {
        op: &'static str,
        expr: Box<Expr>,
    },
    /// Binary operators, and functions used as operators (`x in y`, `a like b`).
    Binary {
        op: String,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Call {
        func: Box<Expr>,
        args: Vec<Arg>,
    },
    /// `obj.name(args)` is `name(obj, args)`; without parentheses `args` is `None`
    /// (a member, `t.col`, or a zero-argument method).
    Method {
        obj: Box<Expr>,
        name: String,
        args: Option<Vec<Arg>>,
    },
    Index {
        obj: Box<Expr>,
        index: Vec<Expr>,
    },
    /// `f{a, }`: partial application; `None` marks an open slot.
    Partial {
        func: Box<Expr>,
        args: Vec<Option<Expr>>,
    },
    Lambda {
        params: Vec<String>,
        body: Vec<Stmt>,
    },
    /// `expr as name` (select lists, group by, table(...)).
    Alias {
        expr: Box<Expr>,
        name: String,
    },
    Select(Box<Select>),
    /// Metacode, `<avg(price)>`: the expression unevaluated (a `CODE` value).
    Meta(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

/// `select` / `exec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub exec: bool,
    /// `select distinct …`: duplicate result rows dropped, the first of each kept.
    pub distinct: bool,
    pub top: Option<Expr>,
    pub items: Vec<Expr>,
    pub from: Expr,
    pub filters: Vec<Expr>,
    pub group_by: Vec<Expr>,
    pub context_by: Vec<Expr>,
    /// `csort`: the order of rows inside each `context by` group (expression, ascending?).
    pub csort: Vec<(Expr, bool)>,
    /// `cgroup by`: cumulative groups, each holding the rows up to its key.
    pub cgroup_by: Vec<Expr>,
    /// `pivot by rows..., column`: a table (a matrix with `exec`) with a column per value of
    /// the last key.
    pub pivot_by: Vec<Expr>,
    pub having: Option<Expr>,
    /// Expression and ascending?
    pub order_by: Vec<(Expr, bool)>,
    pub limit: Option<Expr>,
}

impl Select {
    /// `select * from <from>`, every other clause empty: the base of the queries the engine
    /// composes (a fragment's row read, a merge's final order).
    pub fn over(from: Expr) -> Select {
        Select {
            exec: false,
            distinct: false,
            top: None,
            items: vec![Expr {
                kind: ExprKind::Star,
                pos: from.pos,
            }],
            from,
            filters: Vec::new(),
            group_by: Vec::new(),
            context_by: Vec::new(),
            csort: Vec::new(),
            cgroup_by: Vec::new(),
            pivot_by: Vec::new(),
            having: None,
            order_by: Vec::new(),
            limit: None,
        }
    }

    /// Every expression of the query except its `from`, clause by clause.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.items
            .iter()
            .chain(&self.filters)
            .chain(&self.group_by)
            .chain(&self.context_by)
            .chain(&self.cgroup_by)
            .chain(&self.pivot_by)
            .chain(self.csort.iter().map(|(e, _)| e))
            .chain(&self.having)
            .chain(self.order_by.iter().map(|(e, _)| e))
            .chain(&self.top)
            .chain(&self.limit)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Expr(Expr),
    /// `a = e`, `a, b = e`, `x[i] = e`, `t.col = e`.
    Assign {
        targets: Vec<Expr>,
        value: Expr,
    },
    Def {
        name: String,
        params: Vec<String>,
        body: Vec<Stmt>,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    For {
        var: String,
        iter: Expr,
        body: Vec<Stmt>,
    },
    DoWhile {
        body: Vec<Stmt>,
        cond: Expr,
    },
    While {
        cond: Expr,
        body: Vec<Stmt>,
    },
    Return(Option<Expr>),
    Update {
        table: Expr,
        sets: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    },
    Delete {
        table: Expr,
        filters: Vec<Expr>,
    },
    Insert {
        table: Expr,
        columns: Vec<String>,
        values: Vec<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub pos: Pos,
}

/// Calls `f` on `e` and every expression inside it, except inside lambdas and sub-queries
/// (which `f` sees as single nodes).
pub fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Lit(_)
        | ExprKind::Ident(_)
        | ExprKind::Star
        | ExprKind::Lambda { .. }
        | ExprKind::Meta(_)
        | ExprKind::Select(_) => {}
        ExprKind::Vector(items) | ExprKind::Tuple(items) => items.iter().for_each(|x| walk(x, f)),
        ExprKind::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
            walk(k, f);
            walk(v, f);
        }),
        ExprKind::Unary { expr, .. } | ExprKind::Alias { expr, .. } => walk(expr, f),
        ExprKind::Binary { left, right, .. } => {
            walk(left, f);
            walk(right, f);
        }
        ExprKind::Call { func, args } => {
            walk(func, f);
            args.iter().for_each(|a| walk(&a.value, f));
        }
        ExprKind::Method { obj, args, .. } => {
            walk(obj, f);
            args.iter().flatten().for_each(|a| walk(&a.value, f));
        }
        ExprKind::Index { obj, index } => {
            walk(obj, f);
            index.iter().for_each(|x| walk(x, f));
        }
        ExprKind::Partial { func, args } => {
            walk(func, f);
            args.iter().flatten().for_each(|x| walk(x, f));
        }
    }
}

/// Calls `f` on `e` and, unless `f` returns true (it replaced the node), on every expression
/// inside it; lambdas, metacode and sub-queries are single nodes, as in [`walk`].
pub fn walk_mut(e: &mut Expr, f: &mut dyn FnMut(&mut Expr) -> bool) {
    if f(e) {
        return;
    }
    match &mut e.kind {
        ExprKind::Lit(_)
        | ExprKind::Ident(_)
        | ExprKind::Star
        | ExprKind::Lambda { .. }
        | ExprKind::Meta(_)
        | ExprKind::Select(_) => {}
        ExprKind::Vector(items) | ExprKind::Tuple(items) => {
            items.iter_mut().for_each(|x| walk_mut(x, f))
        }
        ExprKind::Dict(pairs) => pairs.iter_mut().for_each(|(k, v)| {
            walk_mut(k, f);
            walk_mut(v, f);
        }),
        ExprKind::Unary { expr, .. } | ExprKind::Alias { expr, .. } => walk_mut(expr, f),
        ExprKind::Binary { left, right, .. } => {
            walk_mut(left, f);
            walk_mut(right, f);
        }
        ExprKind::Call { func, args } => {
            walk_mut(func, f);
            args.iter_mut().for_each(|a| walk_mut(&mut a.value, f));
        }
        ExprKind::Method { obj, args, .. } => {
            walk_mut(obj, f);
            args.iter_mut()
                .flatten()
                .for_each(|a| walk_mut(&mut a.value, f));
        }
        ExprKind::Index { obj, index } => {
            walk_mut(obj, f);
            index.iter_mut().for_each(|x| walk_mut(x, f));
        }
        ExprKind::Partial { func, args } => {
            walk_mut(func, f);
            args.iter_mut().flatten().for_each(|x| walk_mut(x, f));
        }
    }
}
