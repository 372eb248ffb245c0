//! A recursive-descent parser with precedence climbing, using DolphinDB's operator precedences
//! (higher binds tighter): `||` 1, `&&` 2, comparisons 3, `|` 4, `^` 5, `&` 6, `<<` `>>` 7,
//! `+` `-` 8, `*` `/` `\` `%` `**` `$` `<-` and functions used as operators (`in`, `like`,
//! `between`, ...) 10, `:` `..` 15, unary `-` `!` 16, then calls, indexing and `.` methods.

use super::ast::*;
use super::lexer::{lex, Tok, Token};
use super::{ParseError, Pos};

/// Deepest nesting accepted (guards the stack against hostile input).
pub const NESTING_MAX: usize = 200;

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    /// At the top of a statement `=` assigns; anywhere nested (parentheses, arguments, SQL
    /// clauses) it compares.
    eq_assigns: bool,
    /// Index of the `>` that closes the metacode being parsed, which no comparison takes.
    meta_close: Option<usize>,
}

fn binary_prec(t: &Tok) -> Option<(u8, String)> {
    let p = match t {
        Tok::Op(op) => match *op {
            "||" => 1,
            "&&" => 2,
            "<" | "<=" | "==" | "!=" | "<>" | ">" | ">=" | "=" => 3,
            "|" => 4,
            "^" => 5,
            "&" => 6,
            "<<" | ">>" => 7,
            "+" | "-" => 8,
            "*" | "/" | "\\" | "%" | "**" | "$" | "<-" => 10,
            ":" | ".." => 15,
            _ => return None,
        },
        Tok::Ident(name)
            if matches!(
                name.to_ascii_lowercase().as_str(),
                "in" | "like" | "between" | "join" | "and" | "or" | "not"
            ) =>
        {
            return match name.to_ascii_lowercase().as_str() {
                "and" => Some((2, "&&".into())),
                "or" => Some((1, "||".into())),
                "not" => None,
                n => Some((10, n.to_string())),
            };
        }
        _ => return None,
    };
    let Tok::Op(op) = t else { unreachable!() };
    Some((p, op.to_string()))
}

fn is_literal(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Int(..)
            | Tok::Double(..)
            | Tok::Str(_)
            | Tok::Symbol(_)
            | Tok::Temporal(..)
            | Tok::Duration(..)
    ) || matches!(t, Tok::Ident(s) if s == "NULL")
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Eof => "the end of the script".into(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("the string \"{s}\""),
        other => format!("{other:?}"),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    /// The index of the `>` closing the metacode whose `<` was just taken: the first `>`
    /// outside brackets not followed (on its line) by an operand, so that in
    /// `<select * from t where a > 1>` the first `>` compares and the second closes.
    fn find_meta_close(&self) -> Option<usize> {
        let mut depth = 0usize;
        for j in self.i..self.toks.len() {
            match &self.toks[j].tok {
                Tok::Op("(" | "[" | "{") => depth += 1,
                Tok::Op(")" | "]" | "}") => depth = depth.checked_sub(1)?,
                Tok::Op(">") if depth == 0 => {
                    let next = self.toks.get(j + 1)?;
                    let operand = !next.newline_before
                        && matches!(
                            next.tok,
                            Tok::Int(..)
                                | Tok::Double(..)
                                | Tok::Str(_)
                                | Tok::Symbol(_)
                                | Tok::SymbolVec(_)
                                | Tok::Temporal(..)
                                | Tok::Duration(..)
                                | Tok::Ident(_)
                                | Tok::Op("(" | "[" | "{" | "-" | "!")
                        );
                    if !operand {
                        return Some(j);
                    }
                }
                Tok::Op(";") | Tok::Eof => return None,
                _ => {}
            }
        }
        None
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.i + k).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            pos: self.pos(),
            message: msg.into(),
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.err(format!(
                "expected '{op}' but found {}",
                describe(self.peek())
            )))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.is_kw(kw) {
            self.next();
            Ok(())
        } else {
            Err(self.err(format!(
                "expected '{kw}' but found {}",
                describe(self.peek())
            )))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            t => Err(self.err(format!("expected a name but found {}", describe(&t)))),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > NESTING_MAX {
            return Err(self.err(format!("nesting deeper than {NESTING_MAX}")));
        }
        Ok(())
    }

    // ---- statements ----

    fn program(&mut self) -> Result<Vec<Stmt>, ParseError> {
        let mut out = Vec::new();
        loop {
            while self.eat_op(";") {}
            if matches!(self.peek(), Tok::Eof) {
                return Ok(out);
            }
            out.push(self.statement()?);
            self.end_of_statement()?;
        }
    }

    fn end_of_statement(&mut self) -> Result<(), ParseError> {
        if self.eat_op(";")
            || self.is_op("}")
            || matches!(self.peek(), Tok::Eof)
            || self.toks[self.i].newline_before
        {
            return Ok(());
        }
        Err(self.err(format!(
            "unexpected {} after the end of a statement",
            describe(self.peek())
        )))
    }

    fn block(&mut self) -> Result<Vec<Stmt>, ParseError> {
        if self.eat_op("{") {
            self.enter()?;
            let mut out = Vec::new();
            loop {
                while self.eat_op(";") {}
                if self.eat_op("}") {
                    self.depth -= 1;
                    return Ok(out);
                }
                if matches!(self.peek(), Tok::Eof) {
                    return Err(self.err("expected '}' before the end of the script"));
                }
                out.push(self.statement()?);
                self.end_of_statement()?;
            }
        }
        Ok(vec![self.statement()?])
    }

    fn statement(&mut self) -> Result<Stmt, ParseError> {
        let pos = self.pos();
        let kind = if self.is_kw("def") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.next();
            let name = self.ident()?;
            let params = self.params()?;
            let body = self.function_body()?;
            StmtKind::Def { name, params, body }
        } else if self.is_kw("if") {
            self.next();
            self.expect_op("(")?;
            let cond = self.expr()?;
            self.expect_op(")")?;
            let then = self.block()?;
            let save = self.i;
            while self.eat_op(";") {}
            let otherwise = if self.is_kw("else") {
                self.next();
                self.block()?
            } else {
                self.i = save;
                Vec::new()
            };
            StmtKind::If {
                cond,
                then,
                otherwise,
            }
        } else if self.is_kw("for") {
            self.next();
            self.expect_op("(")?;
            let var = self.ident()?;
            self.expect_kw("in")?;
            let iter = self.expr()?;
            self.expect_op(")")?;
            StmtKind::For {
                var,
                iter,
                body: self.block()?,
            }
        } else if self.is_kw("do") {
            self.next();
            let body = self.block()?;
            while self.eat_op(";") {}
            self.expect_kw("while")?;
            self.expect_op("(")?;
            let cond = self.expr()?;
            self.expect_op(")")?;
            StmtKind::DoWhile { body, cond }
        } else if self.is_kw("while") {
            self.next();
            self.expect_op("(")?;
            let cond = self.expr()?;
            self.expect_op(")")?;
            StmtKind::While {
                cond,
                body: self.block()?,
            }
        } else if self.is_kw("return") {
            self.next();
            if self.is_op(";")
                || self.is_op("}")
                || matches!(self.peek(), Tok::Eof)
                || self.toks[self.i].newline_before
            {
                StmtKind::Return(None)
            } else {
                StmtKind::Return(Some(self.expr()?))
            }
        } else if self.is_kw("update") {
            self.next();
            let table = self.primary()?;
            self.expect_kw("set")?;
            let mut sets = Vec::new();
            loop {
                let col = self.ident()?;
                self.expect_op("=")?;
                sets.push((col, self.expr()?));
                if !self.eat_op(",") {
                    break;
                }
            }
            let filters = if self.is_kw("where") {
                self.next();
                self.expr_list()?
            } else {
                Vec::new()
            };
            StmtKind::Update {
                table,
                sets,
                filters,
            }
        } else if self.is_kw("delete") && self.peek_at(1) == &Tok::Ident("from".into()) {
            self.next();
            self.next();
            let table = self.primary()?;
            let filters = if self.is_kw("where") {
                self.next();
                self.expr_list()?
            } else {
                Vec::new()
            };
            StmtKind::Delete { table, filters }
        } else if self.is_kw("insert") {
            self.next();
            self.expect_kw("into")?;
            let table = self.primary_no_postfix()?;
            let mut columns = Vec::new();
            if self.eat_op("(") {
                loop {
                    columns.push(self.ident()?);
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op(")")?;
            }
            self.expect_kw("values")?;
            self.expect_op("(")?;
            let values = self.expr_list()?;
            self.expect_op(")")?;
            StmtKind::Insert {
                table,
                columns,
                values,
            }
        } else if self.is_op("{") {
            let body = self.block()?;
            StmtKind::If {
                cond: Expr {
                    kind: ExprKind::Lit(Lit::Bool(true)),
                    pos,
                },
                then: body,
                otherwise: Vec::new(),
            }
        } else {
            let first = self.statement_expr()?;
            if self.is_op(",") && matches!(first.kind, ExprKind::Ident(_)) {
                // a, b = ...
                let mut targets = vec![first];
                while self.eat_op(",") {
                    let p = self.pos();
                    targets.push(Expr {
                        kind: ExprKind::Ident(self.ident()?),
                        pos: p,
                    });
                }
                self.expect_op("=")?;
                let vpos = self.pos();
                let mut values = self.expr_list()?;
                let value = if values.len() == 1 {
                    values.pop().expect("one")
                } else {
                    Expr {
                        kind: ExprKind::Tuple(values),
                        pos: vpos,
                    }
                };
                StmtKind::Assign { targets, value }
            } else if self.is_op("=")
                && matches!(
                    first.kind,
                    ExprKind::Ident(_)
                        | ExprKind::Index { .. }
                        | ExprKind::Method { args: None, .. }
                )
            {
                self.next();
                let value = self.expr()?;
                StmtKind::Assign {
                    targets: vec![first],
                    value,
                }
            } else {
                StmtKind::Expr(first)
            }
        };
        Ok(Stmt { kind, pos })
    }

    fn params(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect_op("(")?;
        let mut params = Vec::new();
        if !self.eat_op(")") {
            loop {
                // `mutable x` / `const x` qualifiers.
                if (self.is_kw("mutable") || self.is_kw("const"))
                    && matches!(self.peek_at(1), Tok::Ident(_))
                {
                    self.next();
                }
                params.push(self.ident()?);
                if self.eat_op(")") {
                    break;
                }
                self.expect_op(",")?;
            }
        }
        Ok(params)
    }

    fn function_body(&mut self) -> Result<Vec<Stmt>, ParseError> {
        if self.eat_op(":") {
            let pos = self.pos();
            let e = self.expr()?;
            return Ok(vec![Stmt {
                kind: StmtKind::Return(Some(e)),
                pos,
            }]);
        }
        if !self.is_op("{") {
            return Err(self.err(format!(
                "expected '{{' or ':' to start the function body, found {}",
                describe(self.peek())
            )));
        }
        self.block()
    }

    // ---- expressions ----

    fn expr_list(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut out = vec![self.expr()?];
        while self.eat_op(",") {
            out.push(self.expr()?);
        }
        Ok(out)
    }

    pub(crate) fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let saved = std::mem::replace(&mut self.eq_assigns, false);
        let e = self.binary(0);
        self.eq_assigns = saved;
        self.depth -= 1;
        e
    }

    /// The expression that starts a statement: a following `=` is an assignment.
    fn statement_expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.eq_assigns = true;
        let e = self.binary(0);
        self.eq_assigns = false;
        self.depth -= 1;
        e
    }

    fn binary(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while let Some((prec, op)) = binary_prec(self.peek()) {
            if prec <= min || (op == "=" && self.eq_assigns) || self.meta_close == Some(self.i) {
                break;
            }
            let pos = self.pos();
            self.next();
            let right = self.binary(prec)?;
            left = Expr {
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
                pos,
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        // An operator passed as a function, `mr(ds, f, +)`: its function's name.
        if let Tok::Op(op @ ("+" | "-" | "*" | "/")) = self.peek() {
            if matches!(self.peek_at(1), Tok::Op("," | ")")) {
                let name = match *op {
                    "+" => "add",
                    "-" => "sub",
                    "*" => "mul",
                    _ => "div",
                };
                self.next();
                return Ok(Expr {
                    kind: ExprKind::Ident(name.to_string()),
                    pos,
                });
            }
        }
        for op in ["-", "!"] {
            if self.is_op(op) {
                self.next();
                self.enter()?;
                let e = self.unary()?;
                self.depth -= 1;
                // `-1` is a literal, so `x -1` style vectors and constant folding stay simple.
                if let (ExprKind::Lit(Lit::Int(v, s)), "-") = (&e.kind, op) {
                    return Ok(Expr {
                        kind: ExprKind::Lit(Lit::Int(-v, *s)),
                        pos,
                    });
                }
                if let (ExprKind::Lit(Lit::Double(v, s)), "-") = (&e.kind, op) {
                    return Ok(Expr {
                        kind: ExprKind::Lit(Lit::Double(-v, *s)),
                        pos,
                    });
                }
                let op = if op == "-" { "neg" } else { "not" };
                return Ok(Expr {
                    kind: ExprKind::Unary {
                        op,
                        expr: Box::new(e),
                    },
                    pos,
                });
            }
        }
        if self.is_kw("not") {
            self.next();
            let e = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::Unary {
                    op: "not",
                    expr: Box::new(e),
                },
                pos,
            });
        }
        self.postfix()
    }

    fn args(&mut self, close: &str) -> Result<Vec<Arg>, ParseError> {
        let mut out = Vec::new();
        if self.eat_op(close) {
            return Ok(out);
        }
        loop {
            // An empty argument (`f(a,,b)`) takes the parameter's default.
            if self.is_op(",") {
                let pos = self.pos();
                self.next();
                out.push(Arg {
                    name: None,
                    value: Expr {
                        kind: ExprKind::Lit(Lit::Null),
                        pos,
                    },
                });
                continue;
            }
            let name = match (self.peek().clone(), self.peek_at(1).clone()) {
                (Tok::Ident(n), Tok::Op("=")) => {
                    self.next();
                    self.next();
                    Some(n)
                }
                _ => None,
            };
            let value = if self.is_op("*") && matches!(self.peek_at(1), Tok::Op(")")) {
                let pos = self.pos();
                self.next();
                Expr {
                    kind: ExprKind::Star,
                    pos,
                }
            } else if self.is_kw("distinct") && !matches!(self.peek_at(1), Tok::Op("(" | ")" | ","))
            {
                // `count(distinct sym)`: the argument's distinct values.
                let pos = self.pos();
                self.next();
                let e = self.expr()?;
                Expr {
                    kind: ExprKind::Call {
                        func: Box::new(Expr {
                            kind: ExprKind::Ident("distinct".into()),
                            pos,
                        }),
                        args: vec![Arg {
                            name: None,
                            value: e,
                        }],
                    },
                    pos,
                }
            } else {
                let e = self.expr()?;
                self.aliased(e)?
            };
            out.push(Arg { name, value });
            if self.eat_op(close) {
                return Ok(out);
            }
            self.expect_op(",")?;
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            // Calls, methods and indexing are positioned where the whole expression starts.
            let pos = e.pos;
            let same_line = !self.toks[self.i].newline_before;
            if same_line && self.is_op("(") {
                self.next();
                let mut args = self.args(")")?;
                // `count(distinct x)` is the aggregate `nunique(x)`, so it groups as one.
                if let (ExprKind::Ident(f), [a]) = (&mut e.kind, args.as_mut_slice()) {
                    if f.eq_ignore_ascii_case("count") {
                        if let ExprKind::Call { func, args: inner } = &mut a.value.kind {
                            if matches!(&func.kind, ExprKind::Ident(d) if d == "distinct")
                                && inner.len() == 1
                            {
                                *f = "nunique".into();
                                a.value = inner.remove(0).value;
                            }
                        }
                    }
                }
                e = Expr {
                    kind: ExprKind::Call {
                        func: Box::new(e),
                        args,
                    },
                    pos,
                };
            } else if same_line
                && self.is_op("{")
                && matches!(e.kind, ExprKind::Ident(_) | ExprKind::Method { .. })
            {
                self.next();
                let mut args = Vec::new();
                if !self.eat_op("}") {
                    loop {
                        if self.is_op(",") || self.is_op("}") {
                            args.push(None);
                        } else {
                            args.push(Some(self.expr()?));
                        }
                        if self.eat_op("}") {
                            break;
                        }
                        self.expect_op(",")?;
                    }
                }
                e = Expr {
                    kind: ExprKind::Partial {
                        func: Box::new(e),
                        args,
                    },
                    pos,
                };
            } else if same_line && self.is_op("[") {
                self.next();
                let index = self.expr_list()?;
                self.expect_op("]")?;
                e = Expr {
                    kind: ExprKind::Index {
                        obj: Box::new(e),
                        index,
                    },
                    pos,
                };
            } else if self.is_op(".") && matches!(self.peek_at(1), Tok::Ident(_)) {
                self.next();
                let name = self.ident()?;
                let args = if !self.toks[self.i].newline_before && self.is_op("(") {
                    self.next();
                    Some(self.args(")")?)
                } else {
                    None
                };
                e = Expr {
                    kind: ExprKind::Method {
                        obj: Box::new(e),
                        name,
                        args,
                    },
                    pos,
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn literal(&mut self) -> Option<Lit> {
        let lit = match self.peek().clone() {
            Tok::Int(v, s) => Lit::Int(v, s),
            Tok::Double(v, s) => Lit::Double(v, s),
            Tok::Str(s) => Lit::Str(s),
            Tok::Symbol(s) => Lit::Symbol(s),
            Tok::Temporal(t, v) => Lit::Temporal(t, v),
            Tok::Duration(n, u) => Lit::Duration(n, u),
            Tok::Ident(s) if s == "NULL" => Lit::Null,
            _ => return None,
        };
        self.next();
        Some(lit)
    }

    fn primary_no_postfix(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        Ok(Expr {
            kind: ExprKind::Ident(self.ident()?),
            pos,
        })
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        if is_literal(self.peek()) {
            let first = Expr {
                kind: ExprKind::Lit(self.literal().expect("checked")),
                pos,
            };
            // Literals side by side form a vector: `1 2 3`, `2023.01.01 2023.01.02`.
            if is_literal(self.peek()) && !self.toks[self.i].newline_before {
                let mut items = vec![first];
                while is_literal(self.peek()) && !self.toks[self.i].newline_before {
                    let p = self.pos();
                    items.push(Expr {
                        kind: ExprKind::Lit(self.literal().expect("checked")),
                        pos: p,
                    });
                }
                return Ok(Expr {
                    kind: ExprKind::Vector(items),
                    pos,
                });
            }
            return Ok(first);
        }
        match self.peek().clone() {
            Tok::Op("<") => {
                // Metacode: the expression binds tighter than comparisons, so `>` ends it
                // (a comparison inside goes in parentheses).
                self.next();
                self.enter()?;
                // `<[avg(bid) as a, max(ask)]>`: items may be named, as select items are.
                let e = if self.is_op("[") {
                    let at = self.pos();
                    self.next();
                    let mut items = Vec::new();
                    while !self.is_op("]") {
                        let item = self.expr()?;
                        items.push(self.aliased(item)?);
                        if !self.eat_op(",") {
                            break;
                        }
                    }
                    self.expect_op("]")?;
                    Expr {
                        kind: ExprKind::Vector(items),
                        pos: at,
                    }
                } else if let Some(close) = self.find_meta_close() {
                    // `<select * from t where a > 1>`: the closing `>` is known, so every
                    // comparison before it is inside.
                    let saved = self.meta_close.replace(close);
                    let item = self.expr();
                    self.meta_close = saved;
                    self.aliased(item?)?
                } else {
                    let item = self.binary(4)?;
                    self.aliased(item)?
                };
                self.depth -= 1;
                self.expect_op(">")?;
                Ok(Expr {
                    kind: ExprKind::Meta(Box::new(e)),
                    pos,
                })
            }
            Tok::SymbolVec(v) => {
                self.next();
                Ok(Expr {
                    kind: ExprKind::Lit(Lit::SymbolVec(v)),
                    pos,
                })
            }
            Tok::Op("(") => {
                self.next();
                self.enter()?;
                if self.eat_op(")") {
                    self.depth -= 1;
                    return Ok(Expr {
                        kind: ExprKind::Tuple(Vec::new()),
                        pos,
                    });
                }
                let first = self.expr()?;
                let e = if self.is_op(",") {
                    let mut items = vec![first];
                    while self.eat_op(",") {
                        items.push(self.expr()?);
                    }
                    Expr {
                        kind: ExprKind::Tuple(items),
                        pos,
                    }
                } else {
                    first
                };
                self.expect_op(")")?;
                self.depth -= 1;
                // `(x, y) -> body` lambdas.
                if self.is_op("->") {
                    let params = match &e.kind {
                        ExprKind::Ident(n) => vec![n.clone()],
                        ExprKind::Tuple(items) => items
                            .iter()
                            .map(|i| match &i.kind {
                                ExprKind::Ident(n) => Ok(n.clone()),
                                _ => Err(ParseError {
                                    pos: i.pos,
                                    message: "lambda parameters must be names".into(),
                                }),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => return Err(self.err("lambda parameters must be names")),
                    };
                    self.next();
                    let bpos = self.pos();
                    let body = vec![Stmt {
                        kind: StmtKind::Return(Some(self.expr()?)),
                        pos: bpos,
                    }];
                    return Ok(Expr {
                        kind: ExprKind::Lambda { params, body },
                        pos,
                    });
                }
                Ok(e)
            }
            Tok::Op("[") => {
                self.next();
                self.enter()?;
                let items = if self.is_op("]") {
                    Vec::new()
                } else {
                    self.expr_list()?
                };
                self.expect_op("]")?;
                self.depth -= 1;
                Ok(Expr {
                    kind: ExprKind::Vector(items),
                    pos,
                })
            }
            Tok::Op("{") => {
                self.next();
                self.enter()?;
                let mut entries = Vec::new();
                if !self.eat_op("}") {
                    loop {
                        let k = self.binary(15)?;
                        self.expect_op(":")?;
                        let v = self.expr()?;
                        entries.push((k, v));
                        if self.eat_op("}") {
                            break;
                        }
                        self.expect_op(",")?;
                    }
                }
                self.depth -= 1;
                Ok(Expr {
                    kind: ExprKind::Dict(entries),
                    pos,
                })
            }
            Tok::Ident(name) => {
                let lower = name.to_ascii_lowercase();
                match lower.as_str() {
                    "true" | "false" => {
                        self.next();
                        Ok(Expr {
                            kind: ExprKind::Lit(Lit::Bool(lower == "true")),
                            pos,
                        })
                    }
                    "null" if name == "NULL" => {
                        self.next();
                        Ok(Expr {
                            kind: ExprKind::Lit(Lit::Null),
                            pos,
                        })
                    }
                    "def" => {
                        self.next();
                        let params = self.params()?;
                        let body = self.function_body()?;
                        Ok(Expr {
                            kind: ExprKind::Lambda { params, body },
                            pos,
                        })
                    }
                    "select" | "exec" => self.select(lower == "exec"),
                    _ => {
                        self.next();
                        if self.is_op("->") {
                            self.next();
                            let bpos = self.pos();
                            let body = vec![Stmt {
                                kind: StmtKind::Return(Some(self.expr()?)),
                                pos: bpos,
                            }];
                            return Ok(Expr {
                                kind: ExprKind::Lambda {
                                    params: vec![name],
                                    body,
                                },
                                pos,
                            });
                        }
                        Ok(Expr {
                            kind: ExprKind::Ident(name),
                            pos,
                        })
                    }
                }
            }
            t => Err(self.err(format!("Cannot recognize the token {}", describe(&t)))),
        }
    }

    /// `e as name`: `as` names a whole select item, group key or column argument, so it
    /// binds looser than every operator (`max(x) - min(x) as spread`).
    fn aliased(&mut self, e: Expr) -> Result<Expr, ParseError> {
        if !self.is_kw("as") {
            return Ok(e);
        }
        self.next();
        let pos = e.pos;
        let name = self.ident()?;
        Ok(Expr {
            kind: ExprKind::Alias {
                expr: Box::new(e),
                name,
            },
            pos,
        })
    }

    fn select_item(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("*") {
            let pos = self.pos();
            self.next();
            return Ok(Expr {
                kind: ExprKind::Star,
                pos,
            });
        }
        let e = self.expr()?;
        self.aliased(e)
    }

    fn by_list(&mut self) -> Result<Vec<Expr>, ParseError> {
        self.expect_kw("by")?;
        let mut out = vec![self.select_item()?];
        while self.eat_op(",") {
            out.push(self.select_item()?);
        }
        Ok(out)
    }

    /// `left [inner|left [semi]|full|right|cross] join right [on a.x = b.y [and ...]]`, as the
    /// call of the join function it means (`ej`, `lj`, `lsj`, `fj`, `cj`); a right join is a
    /// left join with the tables swapped.
    fn join_clause(&mut self, left: &Expr) -> Result<Option<Expr>, ParseError> {
        let words = ["inner", "left", "full", "right", "cross", "join"];
        let Some(kind) = words.into_iter().find(|w| self.is_kw(w)) else {
            return Ok(None);
        };
        let pos = self.pos();
        self.next();
        let semi = kind == "left" && self.is_kw("semi");
        if semi {
            self.next();
        }
        if self.is_kw("outer") {
            self.next();
        }
        if kind != "join" {
            self.expect_kw("join")?;
        }
        let right = self.postfix()?;
        let func = match kind {
            "left" if semi => "lsj",
            "left" | "right" => "lj",
            "full" => "fj",
            "cross" => "cj",
            _ => "ej",
        };
        let (a, b) = if kind == "right" {
            (right, left.clone())
        } else {
            (left.clone(), right)
        };
        let mut args = vec![
            Arg {
                name: None,
                value: a,
            },
            Arg {
                name: None,
                value: b,
            },
        ];
        if func != "cj" {
            self.expect_kw("on")?;
            let cond = self.expr()?;
            let rname = match &args[1].value.kind {
                ExprKind::Ident(n) => Some(n.clone()),
                _ => None,
            };
            let (lcols, rcols) = on_columns(&cond, rname.as_deref())
                .ok_or_else(|| self.err("a join's on condition must be column equalities joined by and, such as t1.id = t2.id"))?;
            for cols in [lcols, rcols] {
                args.push(Arg {
                    name: None,
                    value: Expr {
                        kind: ExprKind::Lit(Lit::SymbolVec(cols)),
                        pos,
                    },
                });
            }
        }
        Ok(Some(Expr {
            kind: ExprKind::Call {
                func: Box::new(Expr {
                    kind: ExprKind::Ident(func.into()),
                    pos,
                }),
                args,
            },
            pos,
        }))
    }

    /// `e [asc|desc], ...` (order by, csort).
    fn sort_keys(&mut self) -> Result<Vec<(Expr, bool)>, ParseError> {
        let mut out = Vec::new();
        loop {
            let e = self.expr()?;
            let asc = if self.is_kw("desc") {
                self.next();
                false
            } else {
                if self.is_kw("asc") {
                    self.next();
                }
                true
            };
            out.push((e, asc));
            if !self.eat_op(",") {
                return Ok(out);
            }
        }
    }

    fn select(&mut self, exec: bool) -> Result<Expr, ParseError> {
        let pos = self.pos();
        self.next();
        self.enter()?;
        let top = if self.is_kw("top") {
            self.next();
            Some(self.unary()?)
        } else {
            None
        };
        // The keyword, not the function: `select distinct(x)` calls `distinct`.
        let distinct = self.is_kw("distinct") && !matches!(self.peek_at(1), Tok::Op("("));
        if distinct {
            self.next();
        }
        let mut items = vec![self.select_item()?];
        while self.eat_op(",") {
            items.push(self.select_item()?);
        }
        self.expect_kw("from")?;
        let mut from = self.postfix()?;
        while let Some(joined) = self.join_clause(&from)? {
            from = joined;
        }
        let mut s = Select {
            exec,
            distinct,
            top,
            items,
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
        };
        loop {
            if self.is_kw("where") {
                self.next();
                s.filters = self.expr_list()?;
            } else if self.is_kw("group") {
                self.next();
                s.group_by = self.by_list()?;
            } else if self.is_kw("context") {
                self.next();
                s.context_by = self.by_list()?;
            } else if self.is_kw("cgroup") {
                self.next();
                s.cgroup_by = self.by_list()?;
            } else if self.is_kw("pivot") {
                self.next();
                s.pivot_by = self.by_list()?;
            } else if self.is_kw("csort") {
                self.next();
                s.csort = self.sort_keys()?;
            } else if self.is_kw("having") {
                self.next();
                s.having = Some(self.expr()?);
            } else if self.is_kw("order") {
                self.next();
                self.expect_kw("by")?;
                s.order_by = self.sort_keys()?;
            } else if self.is_kw("limit") {
                self.next();
                s.limit = Some(self.unary()?);
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(Expr {
            kind: ExprKind::Select(Box::new(s)),
            pos,
        })
    }
}

/// The left and right columns of `a.x = b.y and ...`: a side naming the right table (by its
/// variable) is the right column; a bare `x = y` is left `x`, right `y`.
fn on_columns(cond: &Expr, right: Option<&str>) -> Option<(Vec<String>, Vec<String>)> {
    fn column(e: &Expr) -> Option<(Option<&str>, &str)> {
        match &e.kind {
            ExprKind::Ident(c) => Some((None, c)),
            ExprKind::Method {
                obj,
                name,
                args: None,
            } => match &obj.kind {
                ExprKind::Ident(t) => Some((Some(t), name)),
                _ => None,
            },
            _ => None,
        }
    }
    match &cond.kind {
        ExprKind::Binary { op, left, right: r } if op == "&&" => {
            let (mut l1, mut r1) = on_columns(left, right)?;
            let (l2, r2) = on_columns(r, right)?;
            l1.extend(l2);
            r1.extend(r2);
            Some((l1, r1))
        }
        ExprKind::Binary { op, left, right: r } if op == "==" || op == "=" => {
            let (a, b) = (column(left)?, column(r)?);
            let (a, b) = match (a.0, b.0) {
                (Some(t), _) if Some(t) == right => (b, a),
                _ => (a, b),
            };
            Some((vec![a.1.to_string()], vec![b.1.to_string()]))
        }
        _ => None,
    }
}

/// Parses a whole script.
pub fn parse(src: &str) -> Result<Vec<Stmt>, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
        eq_assigns: false,
        meta_close: None,
    };
    p.program()
}

/// Parses one expression (e.g. the function field of an API `function` request).
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
        eq_assigns: false,
        meta_close: None,
    };
    let e = p.expr()?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(p.err(format!(
            "unexpected {} after the expression",
            describe(p.peek())
        )));
    }
    Ok(e)
}
