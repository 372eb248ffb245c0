//! The syntax tree in bytes: how a plan fragment's expressions (and a function `rpc` sends)
//! travel between nodes. Plans travel as trees, not as script text, so a data node never
//! parses what a coordinator already parsed, and positions in errors still point into the
//! user's script.
//!
//! Invariants:
//! - `decode(encode(x)) == x` for every tree the parser can produce (a test holds it over every
//!   golden script).
//! - Decoding bytes from the network never panics and never recurses deeper than
//!   [`DEPTH_MAX`]; anything malformed is an `Err` naming what was wrong.
//!
//! Format: one tag byte per node, then its fields in declaration order; strings and lists are
//! length-prefixed (varints); a position is two varints (line, column).

use storage::bytes::{Reader, Writer};

use super::ast::{Arg, Expr, ExprKind, Lit, Select, Stmt, StmtKind};
use super::Pos;

/// Deepest nesting a decoded tree may have (the parser's own limit is far below it).
pub const DEPTH_MAX: usize = 512;

/// Unary operators the parser produces (the tree holds them as `&'static str`).
const UNARY_OPS: [&str; 2] = ["neg", "not"];

pub fn encode_expr(e: &Expr, w: &mut Writer) {
    pos(e.pos, w);
    match &e.kind {
        ExprKind::Lit(l) => {
            w.u8(0);
            lit(l, w);
        }
        ExprKind::Ident(n) => {
            w.u8(1);
            w.blob(n.as_bytes());
        }
        ExprKind::Star => w.u8(2),
        ExprKind::Vector(items) => {
            w.u8(3);
            exprs(items, w);
        }
        ExprKind::Tuple(items) => {
            w.u8(4);
            exprs(items, w);
        }
        ExprKind::Dict(pairs) => {
            w.u8(5);
            w.varint(pairs.len() as u64);
            for (k, v) in pairs {
                encode_expr(k, w);
                encode_expr(v, w);
            }
        }
        ExprKind::Unary { op, expr } => {
            w.u8(6);
            w.blob(op.as_bytes());
            encode_expr(expr, w);
        }
        ExprKind::Binary { op, left, right } => {
            w.u8(7);
            w.blob(op.as_bytes());
            encode_expr(left, w);
            encode_expr(right, w);
        }
        ExprKind::Call { func, args } => {
            w.u8(8);
            encode_expr(func, w);
            call_args(args, w);
        }
        ExprKind::Method { obj, name, args } => {
            w.u8(9);
            encode_expr(obj, w);
            w.blob(name.as_bytes());
            match args {
                None => w.u8(0),
                Some(a) => {
                    w.u8(1);
                    call_args(a, w);
                }
            }
        }
        ExprKind::Index { obj, index } => {
            w.u8(10);
            encode_expr(obj, w);
            exprs(index, w);
        }
        ExprKind::Partial { func, args } => {
            w.u8(11);
            encode_expr(func, w);
            w.varint(args.len() as u64);
            for a in args {
                match a {
                    None => w.u8(0),
                    Some(a) => {
                        w.u8(1);
                        encode_expr(a, w);
                    }
                }
            }
        }
        ExprKind::Lambda { params, body } => {
            w.u8(12);
            strings(params, w);
            stmts(body, w);
        }
        ExprKind::Alias { expr, name } => {
            w.u8(13);
            encode_expr(expr, w);
            w.blob(name.as_bytes());
        }
        ExprKind::Select(s) => {
            w.u8(14);
            encode_select(s, w);
        }
        ExprKind::Meta(e) => {
            w.u8(15);
            encode_expr(e, w);
        }
    }
}

pub fn encode_select(s: &Select, w: &mut Writer) {
    w.u8(s.exec as u8);
    opt(&s.top, w);
    exprs(&s.items, w);
    encode_expr(&s.from, w);
    exprs(&s.filters, w);
    exprs(&s.group_by, w);
    exprs(&s.context_by, w);
    sorts(&s.csort, w);
    exprs(&s.cgroup_by, w);
    exprs(&s.pivot_by, w);
    opt(&s.having, w);
    sorts(&s.order_by, w);
    opt(&s.limit, w);
    w.u8(s.distinct as u8);
}

pub fn encode_stmt(s: &Stmt, w: &mut Writer) {
    pos(s.pos, w);
    match &s.kind {
        StmtKind::Expr(e) => {
            w.u8(0);
            encode_expr(e, w);
        }
        StmtKind::Assign { targets, value } => {
            w.u8(1);
            exprs(targets, w);
            encode_expr(value, w);
        }
        StmtKind::Def { name, params, body } => {
            w.u8(2);
            w.blob(name.as_bytes());
            strings(params, w);
            stmts(body, w);
        }
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            w.u8(3);
            encode_expr(cond, w);
            stmts(then, w);
            stmts(otherwise, w);
        }
        StmtKind::For { var, iter, body } => {
            w.u8(4);
            w.blob(var.as_bytes());
            encode_expr(iter, w);
            stmts(body, w);
        }
        StmtKind::DoWhile { body, cond } => {
            w.u8(5);
            stmts(body, w);
            encode_expr(cond, w);
        }
        StmtKind::While { cond, body } => {
            w.u8(6);
            encode_expr(cond, w);
            stmts(body, w);
        }
        StmtKind::Return(e) => {
            w.u8(7);
            opt(e, w);
        }
        StmtKind::Update {
            table,
            sets,
            filters,
        } => {
            w.u8(8);
            encode_expr(table, w);
            w.varint(sets.len() as u64);
            for (n, e) in sets {
                w.blob(n.as_bytes());
                encode_expr(e, w);
            }
            exprs(filters, w);
        }
        StmtKind::Delete { table, filters } => {
            w.u8(9);
            encode_expr(table, w);
            exprs(filters, w);
        }
        StmtKind::Insert {
            table,
            columns,
            values,
        } => {
            w.u8(10);
            encode_expr(table, w);
            strings(columns, w);
            exprs(values, w);
        }
    }
}

fn pos(p: Pos, w: &mut Writer) {
    w.varint(p.line as u64);
    w.varint(p.col as u64);
}

fn lit(l: &Lit, w: &mut Writer) {
    let suffix = |s: &Option<char>, w: &mut Writer| w.u32(s.map_or(0, |c| c as u32));
    match l {
        Lit::Int(v, s) => {
            w.u8(0);
            w.varint_signed(*v);
            suffix(s, w);
        }
        Lit::Double(v, s) => {
            w.u8(1);
            w.u64(v.to_bits());
            suffix(s, w);
        }
        Lit::Str(s) => {
            w.u8(2);
            w.blob(s.as_bytes());
        }
        Lit::Symbol(s) => {
            w.u8(3);
            w.blob(s.as_bytes());
        }
        Lit::SymbolVec(v) => {
            w.u8(4);
            strings(v, w);
        }
        Lit::Bool(b) => {
            w.u8(5);
            w.u8(*b as u8);
        }
        Lit::Null => w.u8(6),
        Lit::Temporal(ty, v) => {
            w.u8(7);
            w.u8(*ty);
            w.varint_signed(*v);
        }
        Lit::Duration(n, unit) => {
            w.u8(8);
            w.varint_signed(*n);
            w.blob(unit.as_bytes());
        }
    }
}

fn exprs(v: &[Expr], w: &mut Writer) {
    w.varint(v.len() as u64);
    for e in v {
        encode_expr(e, w);
    }
}

fn stmts(v: &[Stmt], w: &mut Writer) {
    w.varint(v.len() as u64);
    for s in v {
        encode_stmt(s, w);
    }
}

fn strings(v: &[String], w: &mut Writer) {
    w.varint(v.len() as u64);
    for s in v {
        w.blob(s.as_bytes());
    }
}

fn opt(e: &Option<Expr>, w: &mut Writer) {
    match e {
        None => w.u8(0),
        Some(e) => {
            w.u8(1);
            encode_expr(e, w);
        }
    }
}

fn sorts(v: &[(Expr, bool)], w: &mut Writer) {
    w.varint(v.len() as u64);
    for (e, asc) in v {
        encode_expr(e, w);
        w.u8(*asc as u8);
    }
}

fn call_args(args: &[Arg], w: &mut Writer) {
    w.varint(args.len() as u64);
    for a in args {
        match &a.name {
            None => w.u8(0),
            Some(n) => {
                w.u8(1);
                w.blob(n.as_bytes());
            }
        }
        encode_expr(&a.value, w);
    }
}

/// Decodes trees, refusing anything malformed or nested deeper than [`DEPTH_MAX`].
pub struct Decoder<'a, 'b> {
    r: &'b mut Reader<'a>,
    depth: usize,
}

type Res<T> = Result<T, String>;

impl<'a, 'b> Decoder<'a, 'b> {
    pub fn new(r: &'b mut Reader<'a>) -> Self {
        Decoder { r, depth: 0 }
    }

    fn enter(&mut self) -> Res<()> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return Err(format!("a syntax tree nested deeper than {DEPTH_MAX}"));
        }
        Ok(())
    }

    fn u8(&mut self) -> Res<u8> {
        self.r.u8().map_err(|e| e.to_string())
    }

    fn varint(&mut self) -> Res<u64> {
        self.r.varint().map_err(|e| e.to_string())
    }

    fn signed(&mut self) -> Res<i64> {
        self.r.varint_signed().map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Res<String> {
        let b = self.r.blob().map_err(|e| e.to_string())?;
        String::from_utf8(b.to_vec()).map_err(|_| "a name that is not UTF-8".to_string())
    }

    fn bool(&mut self) -> Res<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("a flag of {b}")),
        }
    }

    /// A list length, bounded by the bytes left (each element takes at least one).
    fn count(&mut self) -> Res<usize> {
        let left = self.r.remaining();
        self.r.count(left).map_err(|e| e.to_string())
    }

    fn pos(&mut self) -> Res<Pos> {
        let line = u32::try_from(self.varint()?).map_err(|_| "a line out of range")?;
        let col = u32::try_from(self.varint()?).map_err(|_| "a column out of range")?;
        Ok(Pos { line, col })
    }

    fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> Res<T>) -> Res<Vec<T>> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }

    fn exprs(&mut self) -> Res<Vec<Expr>> {
        self.list(|d| d.expr())
    }

    fn stmts(&mut self) -> Res<Vec<Stmt>> {
        self.list(|d| d.stmt())
    }

    fn strings(&mut self) -> Res<Vec<String>> {
        self.list(|d| d.string())
    }

    fn opt(&mut self) -> Res<Option<Expr>> {
        Ok(if self.bool()? {
            Some(self.expr()?)
        } else {
            None
        })
    }

    fn boxed(&mut self) -> Res<Box<Expr>> {
        self.expr().map(Box::new)
    }

    fn sorts(&mut self) -> Res<Vec<(Expr, bool)>> {
        self.list(|d| Ok((d.expr()?, d.bool()?)))
    }

    fn args(&mut self) -> Res<Vec<Arg>> {
        self.list(|d| {
            let name = if d.bool()? { Some(d.string()?) } else { None };
            Ok(Arg {
                name,
                value: d.expr()?,
            })
        })
    }

    fn suffix(&mut self) -> Res<Option<char>> {
        let c = self.r.u32().map_err(|e| e.to_string())?;
        if c == 0 {
            return Ok(None);
        }
        char::from_u32(c)
            .map(Some)
            .ok_or_else(|| format!("a literal suffix {c}"))
    }

    fn lit(&mut self) -> Res<Lit> {
        Ok(match self.u8()? {
            0 => Lit::Int(self.signed()?, self.suffix()?),
            1 => Lit::Double(
                f64::from_bits(self.r.u64().map_err(|e| e.to_string())?),
                self.suffix()?,
            ),
            2 => Lit::Str(self.string()?),
            3 => Lit::Symbol(self.string()?),
            4 => Lit::SymbolVec(self.strings()?),
            5 => Lit::Bool(self.bool()?),
            6 => Lit::Null,
            7 => Lit::Temporal(self.u8()?, self.signed()?),
            8 => {
                let n = self.signed()?;
                let unit = self.string()?;
                let unit = crate::eval::DURATION_UNITS
                    .iter()
                    .find(|u| **u == unit)
                    .ok_or_else(|| format!("a duration unit {unit:?}"))?;
                Lit::Duration(n, unit)
            }
            t => return Err(format!("a literal tag {t}")),
        })
    }

    pub fn expr(&mut self) -> Res<Expr> {
        self.enter()?;
        let pos = self.pos()?;
        let kind = match self.u8()? {
            0 => ExprKind::Lit(self.lit()?),
            1 => ExprKind::Ident(self.string()?),
            2 => ExprKind::Star,
            3 => ExprKind::Vector(self.exprs()?),
            4 => ExprKind::Tuple(self.exprs()?),
            5 => ExprKind::Dict(self.list(|d| Ok((d.expr()?, d.expr()?)))?),
            6 => {
                let op = self.string()?;
                let op = UNARY_OPS
                    .iter()
                    .find(|o| **o == op)
                    .ok_or_else(|| format!("a unary operator {op:?}"))?;
                ExprKind::Unary {
                    op,
                    expr: self.boxed()?,
                }
            }
            7 => ExprKind::Binary {
                op: self.string()?,
                left: self.boxed()?,
                right: self.boxed()?,
            },
            8 => ExprKind::Call {
                func: self.boxed()?,
                args: self.args()?,
            },
            9 => {
                let obj = self.boxed()?;
                let name = self.string()?;
                let args = if self.bool()? {
                    Some(self.args()?)
                } else {
                    None
                };
                ExprKind::Method { obj, name, args }
            }
            10 => ExprKind::Index {
                obj: self.boxed()?,
                index: self.exprs()?,
            },
            11 => ExprKind::Partial {
                func: self.boxed()?,
                args: self.list(|d| d.opt())?,
            },
            12 => ExprKind::Lambda {
                params: self.strings()?,
                body: self.stmts()?,
            },
            13 => ExprKind::Alias {
                expr: self.boxed()?,
                name: self.string()?,
            },
            14 => ExprKind::Select(Box::new(self.select()?)),
            15 => ExprKind::Meta(self.boxed()?),
            t => return Err(format!("an expression tag {t}")),
        };
        self.depth -= 1;
        Ok(Expr { kind, pos })
    }

    pub fn select(&mut self) -> Res<Select> {
        self.enter()?;
        let s = Select {
            exec: self.bool()?,
            top: self.opt()?,
            items: self.exprs()?,
            from: self.expr()?,
            filters: self.exprs()?,
            group_by: self.exprs()?,
            context_by: self.exprs()?,
            csort: self.sorts()?,
            cgroup_by: self.exprs()?,
            pivot_by: self.exprs()?,
            having: self.opt()?,
            order_by: self.sorts()?,
            limit: self.opt()?,
            distinct: self.bool()?,
        };
        self.depth -= 1;
        Ok(s)
    }

    pub fn stmt(&mut self) -> Res<Stmt> {
        self.enter()?;
        let pos = self.pos()?;
        let kind = match self.u8()? {
            0 => StmtKind::Expr(self.expr()?),
            1 => StmtKind::Assign {
                targets: self.exprs()?,
                value: self.expr()?,
            },
            2 => StmtKind::Def {
                name: self.string()?,
                params: self.strings()?,
                body: self.stmts()?,
            },
            3 => StmtKind::If {
                cond: self.expr()?,
                then: self.stmts()?,
                otherwise: self.stmts()?,
            },
            4 => StmtKind::For {
                var: self.string()?,
                iter: self.expr()?,
                body: self.stmts()?,
            },
            5 => StmtKind::DoWhile {
                body: self.stmts()?,
                cond: self.expr()?,
            },
            6 => StmtKind::While {
                cond: self.expr()?,
                body: self.stmts()?,
            },
            7 => StmtKind::Return(self.opt()?),
            8 => StmtKind::Update {
                table: self.expr()?,
                sets: self.list(|d| Ok((d.string()?, d.expr()?)))?,
                filters: self.exprs()?,
            },
            9 => StmtKind::Delete {
                table: self.expr()?,
                filters: self.exprs()?,
            },
            10 => StmtKind::Insert {
                table: self.expr()?,
                columns: self.strings()?,
                values: self.exprs()?,
            },
            t => return Err(format!("a statement tag {t}")),
        };
        self.depth -= 1;
        Ok(Stmt { kind, pos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(src: &str) {
        let prog = crate::parse::parse(src).expect("parses");
        let mut w = Writer::default();
        for s in &prog {
            encode_stmt(s, &mut w);
        }
        let mut r = Reader::new(&w.buf);
        let mut d = Decoder::new(&mut r);
        let back: Vec<Stmt> = (0..prog.len()).map(|_| d.stmt().unwrap()).collect();
        assert_eq!(back, prog, "{src}");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn every_golden_script_survives_the_round_trip() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "dos") {
                let src = std::fs::read_to_string(&p).unwrap();
                // Golden scripts hold deliberate syntax errors: round-trip what parses.
                for chunk in src.split("//---") {
                    // The rest of the `//---` line is the case's title.
                    let chunk = chunk.split_once('\n').map_or("", |(_, body)| body);
                    if crate::parse::parse(chunk).is_ok() {
                        round_trip(chunk);
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 100, "only {n} scripts");
    }

    #[test]
    fn truncated_or_garbage_bytes_are_errors() {
        let prog = crate::parse::parse(
            "select first(x) as o, max(x) from t where date(d) = 2020.06.01, s in `a`b group by s",
        )
        .unwrap();
        let mut w = Writer::default();
        encode_stmt(&prog[0], &mut w);
        for cut in 0..w.buf.len() {
            let mut r = Reader::new(&w.buf[..cut]);
            assert!(Decoder::new(&mut r).stmt().is_err(), "cut at {cut}");
        }
        let mut bytes = w.buf.clone();
        for i in 0..bytes.len() {
            bytes[i] ^= 0xA5;
            let mut r = Reader::new(&bytes);
            let _ = Decoder::new(&mut r).stmt();
            bytes[i] ^= 0xA5;
        }
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused() {
        // `neg` applied DEPTH_MAX + 1 times, written by hand.
        let mut w = Writer::default();
        for _ in 0..=DEPTH_MAX {
            pos(Pos { line: 1, col: 1 }, &mut w);
            w.u8(6);
            w.blob(b"neg");
        }
        let mut r = Reader::new(&w.buf);
        let e = Decoder::new(&mut r).expr().unwrap_err();
        assert!(e.contains("deeper"), "{e}");
    }
}
