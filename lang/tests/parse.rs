//! Parser tests: the tutorial's scripts verbatim, the constructs DolphinDB users write daily,
//! literal values, operator precedence, and errors with line and column.

use lang::parse::ast::*;
use lang::parse::{parse, parse_expr, ParseError};

fn script(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/scripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A compact rendering of an expression, to compare trees readably.
fn show(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Lit(Lit::Int(v, None)) => v.to_string(),
        ExprKind::Lit(Lit::Int(v, Some(s))) => format!("{v}{s}"),
        ExprKind::Lit(Lit::Double(v, _)) => format!("{v:?}"),
        ExprKind::Lit(Lit::Str(s)) => format!("{s:?}"),
        ExprKind::Lit(Lit::Symbol(s)) => format!("`{s}"),
        ExprKind::Lit(Lit::SymbolVec(v)) => v.iter().map(|s| format!("`{s}")).collect(),
        ExprKind::Lit(Lit::Bool(b)) => b.to_string(),
        ExprKind::Lit(Lit::Null) => "NULL".into(),
        ExprKind::Lit(Lit::Temporal(t, v)) => format!("T{t}:{v}"),
        ExprKind::Lit(Lit::Duration(n, u)) => format!("{n}{u}"),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Star => "*".into(),
        ExprKind::Vector(v) => format!("[{}]", v.iter().map(show).collect::<Vec<_>>().join(" ")),
        ExprKind::Tuple(v) => format!("({})", v.iter().map(show).collect::<Vec<_>>().join(", ")),
        ExprKind::Dict(v) => format!(
            "{{{}}}",
            v.iter()
                .map(|(k, x)| format!("{}:{}", show(k), show(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ExprKind::Unary { op, expr } => format!("{op}({})", show(expr)),
        ExprKind::Binary { op, left, right } => format!("({} {op} {})", show(left), show(right)),
        ExprKind::Call { func, args } => format!("{}({})", show(func), args_str(args)),
        ExprKind::Method {
            obj,
            name,
            args: Some(a),
        } => format!("{}.{name}({})", show(obj), args_str(a)),
        ExprKind::Method {
            obj,
            name,
            args: None,
        } => format!("{}.{name}", show(obj)),
        ExprKind::Index { obj, index } => format!(
            "{}[{}]",
            show(obj),
            index.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Partial { func, args } => format!(
            "{}{{{}}}",
            show(func),
            args.iter()
                .map(|a| a.as_ref().map(show).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ExprKind::Lambda { params, .. } => format!("lambda({})", params.join(", ")),
        ExprKind::Alias { expr, name } => format!("{} as {name}", show(expr)),
        ExprKind::Meta(e) => format!("<{}>", show(e)),
        ExprKind::Select(s) => format!(
            "{} {} from {}{}{}",
            if s.exec { "exec" } else { "select" },
            s.items.iter().map(show).collect::<Vec<_>>().join(", "),
            show(&s.from),
            if s.filters.is_empty() {
                String::new()
            } else {
                format!(
                    " where {}",
                    s.filters.iter().map(show).collect::<Vec<_>>().join(", ")
                )
            },
            if s.group_by.is_empty() {
                String::new()
            } else {
                format!(
                    " group by {}",
                    s.group_by.iter().map(show).collect::<Vec<_>>().join(", ")
                )
            },
        ),
    }
}

fn args_str(args: &[Arg]) -> String {
    args.iter()
        .map(|a| match &a.name {
            Some(n) => format!("{n}={}", show(&a.value)),
            None => show(&a.value),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn e(src: &str) -> String {
    show(&parse_expr(src).unwrap_or_else(|err| panic!("{src}: {err}")))
}

#[test]
fn tutorial_step5_parses_verbatim() {
    let stmts = parse(&script("tutorial_step5.dos")).unwrap();
    assert_eq!(stmts.len(), 26);
    let StmtKind::If { cond, then, .. } = &stmts[3].kind else {
        panic!("{:?}", stmts[3])
    };
    assert_eq!(show(cond), "existsDatabase(dbName)");
    assert_eq!(then.len(), 1);
    let StmtKind::Expr(create) = &stmts[8].kind else {
        panic!()
    };
    assert_eq!(show(create), "db.createPartitionedTable(table=schemaTable, tableName=tbName, partitionColumns=`DateTime)");
    let StmtKind::Assign { value, .. } = &stmts[13].kind else {
        panic!()
    };
    assert_eq!(show(value), "(T11:1673170200 + (take((0 .. 120), 121) * 60)).join((T11:1673182800 + (take((0 .. 120), 121) * 60)))");
    assert_eq!(stmts[25].pos.line, 31);
}

#[test]
fn tutorial_step6_parses_verbatim() {
    let stmts = parse(&script("tutorial_step6.dos")).unwrap();
    assert_eq!(stmts.len(), 3, "{stmts:#?}");
    let StmtKind::Expr(q1) = &stmts[1].kind else {
        panic!()
    };
    assert_eq!(
        show(q1),
        "select count(*) from pt group by date(DateTime) as Date"
    );
    let StmtKind::Assign { targets, value } = &stmts[2].kind else {
        panic!()
    };
    assert_eq!(show(&targets[0]), "result");
    assert_eq!(
        show(value),
        "select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close from pt group by date(DateTime) as Date, SecurityID"
    );
}

#[test]
fn precedence_follows_dolphindb() {
    assert_eq!(e("3+a*a"), "(3 + (a * a))");
    assert_eq!(e("3*a..10"), "(3 * (a .. 10))");
    assert_eq!(e("-n..n"), "(neg(n) .. n)");
    assert_eq!(e("1..8$4:2"), "((1 .. 8) $ (4 : 2))");
    assert_eq!(e("a || b && c"), "(a || (b && c))");
    assert_eq!(e("x < 1 && y >= 2"), "((x < 1) && (y >= 2))");
    assert_eq!(e("1 2 3 <- 4"), "([1 2 3] <- 4)");
    assert_eq!(e("2<4 5"), "(2 < [4 5])");
    assert_eq!(e("x in `A`B"), "(x in `A`B)");
    assert_eq!(e("s like \"A%\""), "(s like \"A%\")");
    assert_eq!(e("x between 1:5"), "(x between (1 : 5))");
    assert_eq!(e("a - b - c"), "((a - b) - c)");
    assert_eq!(e("!x-1"), "(not(x) - 1)");
    assert_eq!(e("1 << 2 + 1"), "(1 << (2 + 1))");
}

#[test]
fn calls_methods_partials_lambdas() {
    assert_eq!(e("x.f(y)"), "x.f(y)");
    assert_eq!(e("t.append!(u)"), "t.append!(u)");
    assert_eq!(e("append!(t, u)"), "append!(t, u)");
    assert_eq!(
        e("tableInsert{loadTable('dfs://db','t')}"),
        "tableInsert{loadTable(\"dfs://db\", \"t\")}"
    );
    assert_eq!(e("f{a, }"), "f{a, }");
    assert_eq!(e("x[0 2]"), "x[[0 2]]");
    assert_eq!(e("def(x): x+1"), "lambda(x)");
    assert_eq!(e("x -> x * 2"), "lambda(x)");
    assert_eq!(e("(x, y) -> x + y"), "lambda(x, y)");
    assert_eq!(e("(1, 2, 3)"), "(1, 2, 3)");
    assert_eq!(e("{1: `a, 2: `b}"), "{1:`a, 2:`b}");
    assert_eq!(e("t.col"), "t.col");
    assert_eq!(e("count(*)"), "count(*)");
    assert_eq!(e("[SYMBOL, DATETIME]"), "[SYMBOL DATETIME]");
}

#[test]
fn metacode_and_joins() {
    assert_eq!(e("<avg(bid)>"), "<avg(bid)>");
    assert_eq!(e("<[max(bid), x + 1]>"), "<[max(bid) (x + 1)]>");
    assert_eq!(e("<[avg(bid) as a, b]>"), "<[avg(bid) as a b]>");
    assert_eq!(e("<sum(x) as s>"), "<sum(x) as s>");
    // A comparison inside metacode: the `>` that closes it is the one no operand follows.
    assert_eq!(e("f(<x > 1>)"), "f(<(x > 1)>)");
    assert_eq!(e("<a > b>"), "<(a > b)>");
    assert!(e("f(<select * from t where d = 2019.01.02>, true)").starts_with("f(<select * from t"));
    // An operator passed as a function is its function.
    assert_eq!(e("mr(ds, f, +)"), "mr(ds, f, add)");
    assert_eq!(e("reduce(*, x)"), "reduce(mul, x)");
    assert_eq!(e("x join y"), "(x join y)");
    assert_eq!(e("bar(t, 5m)"), "bar(t, 5m)");
    assert_eq!(e("-5s:100ms"), "(neg(5s) : 100ms)");
    assert_eq!(
        e("select * from t1 inner join t2 on t1.id = t2.id"),
        "select * from ej(t1, t2, `id, `id)"
    );
    assert_eq!(
        e("select * from a left join b on b.k = a.j and x = y"),
        "select * from lj(a, b, `j`x, `k`y)"
    );
    assert_eq!(
        e("select * from a right outer join b on a.k = b.k"),
        "select * from lj(b, a, `k, `k)"
    );
    assert_eq!(
        e("select * from a left semi join b on a.k = b.k full join c on a.k = c.k"),
        "select * from fj(lsj(a, b, `k, `k), c, `k, `k)"
    );
    assert_eq!(e("select * from a cross join b"), "select * from cj(a, b)");
}

#[test]
fn literals_have_dolphindb_values() {
    assert_eq!(e("2021.01.01"), "T6:18628");
    assert_eq!(e("2021.01M"), format!("T7:{}", 2021 * 12));
    assert_eq!(e("09:30:00"), "T10:34200");
    assert_eq!(e("09:30:00.123"), "T8:34200123");
    assert_eq!(e("09:30m"), "T9:570");
    assert_eq!(
        e("10:20"),
        "(10 : 20)",
        "two numbers and a colon are a pair"
    );
    assert_eq!(e("2023.01.08T09:30:00"), "T11:1673170200");
    assert_eq!(e("2023.01.08T09:30:00.005"), "T12:1673170200005");
    assert_eq!(
        e("2023.01.08T09:30:00.000000007"),
        "T14:1673170200000000007"
    );
    assert_eq!(e("13:00:00.000000001"), "T13:46800000000001");
    assert_eq!(e("1h"), "1h");
    assert_eq!(e("100l"), "100l");
    assert_eq!(e("1.5"), "1.5");
    assert_eq!(e("1e3"), "1000.0");
    assert_eq!(e("-3"), "-3");
    assert_eq!(e("'it\\'s'"), "\"it's\"");
    assert_eq!(e("`AAPL"), "`AAPL");
    assert_eq!(e("`AAPL`IBM`KO"), "`AAPL`IBM`KO");
    assert_eq!(e("true"), "true");
    assert_eq!(e("1 NULL 1"), "[1 NULL 1]");
}

#[test]
fn statements() {
    let src = "a, b = 1, 2\ndef f(x, y) { return x + y }\nfor (i in 1..3) { s = s + i }\ndo { k = k - 1 } while (k > 0)\nx[0] = 5\nt.c = 1\n/* block\ncomment */ update t set v = v * 2 where id = 1\ndelete from t where v < 0\ninsert into t values (1, `a)\nexec v from t where id in 1 2";
    let stmts = parse(src).unwrap();
    let kinds: Vec<&str> = stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Assign { .. } => "assign",
            StmtKind::Def { .. } => "def",
            StmtKind::For { .. } => "for",
            StmtKind::DoWhile { .. } => "dowhile",
            StmtKind::Update { .. } => "update",
            StmtKind::Delete { .. } => "delete",
            StmtKind::Insert { .. } => "insert",
            StmtKind::Expr(_) => "expr",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "assign", "def", "for", "dowhile", "assign", "assign", "update", "delete", "insert",
            "expr"
        ]
    );
    assert_eq!(stmts[6].pos.line, 8, "positions survive block comments");
}

fn err(src: &str) -> ParseError {
    parse(src).unwrap_err()
}

#[test]
fn errors_name_line_and_column() {
    let e1 = err("x = 1\ny = (2 + 3\nz = 4");
    assert_eq!((e1.pos.line, e1.pos.col), (3, 1), "{e1}");
    assert!(
        e1.to_string()
            .starts_with("Syntax Error: [line #3, column #1] expected ')'"),
        "{e1}"
    );
    let e2 = err("a = 1 # 2");
    assert_eq!((e2.pos.line, e2.pos.col), (1, 7));
    assert!(
        e2.to_string().contains("Cannot recognize the token #"),
        "{e2}"
    );
    let e3 = err("s = \"unterminated");
    assert_eq!((e3.pos.line, e3.pos.col), (1, 5));
    let e4 = err("d = 2021.13.01");
    assert!(e4.to_string().contains("month 13"), "{e4}");
    let e5 = err("if (x) { y = 1");
    assert!(e5.to_string().contains("expected '}'"), "{e5}");
    let e6 = err("select a from");
    assert!(e6.to_string().contains("end of the script"), "{e6}");
    let e7 = err("x = 12abc");
    assert_eq!(e7.pos.col, 7);
    let deep = format!("x = {}1{}", "(".repeat(500), ")".repeat(500));
    assert!(err(&deep).to_string().contains("nesting deeper"));
}
