//! Interpreter tests: the tutorial's Step 5 data generation (its lines verbatim) and Step 6
//! queries over the resulting in-memory table, checked against an independent computation;
//! operators, built-ins and DolphinDB-style error messages with positions.

use std::collections::BTreeMap;

use lang::eval::{Interp, Value};
use storage::column::{Column, ColumnData};
use storage::types::DataType;

fn run(it: &mut Interp, src: &str) -> Value {
    it.run_now(src).unwrap_or_else(|e| panic!("{src}\n=> {e}"))
}

fn table(v: &Value) -> &lang::eval::Table {
    match v {
        Value::Table(t) => t,
        other => panic!("expected a table, got {}", other.typestr()),
    }
}

fn f64s(c: &Column) -> Vec<f64> {
    match &c.data {
        ColumnData::F64(v) => v.clone(),
        other => panic!("not DOUBLE: {other:?}"),
    }
}

fn strings(c: &Column) -> Vec<String> {
    (0..c.len())
        .map(|i| String::from_utf8_lossy(c.bytes_at(i).unwrap()).into_owned())
        .collect()
}

#[test]
fn tutorial_step5_data_and_step6_queries_in_memory() {
    let step5 = std::fs::read_to_string(format!(
        "{}/tests/scripts/tutorial_step5.dos",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // The data-generation lines, verbatim (the DFS lines need databases, which come later).
    let start = step5.find("n = 1210000").unwrap();
    let end = step5.find("t = tmp.join!").unwrap();
    let end = end + step5[end..].find('\n').unwrap();
    let mut it = Interp::new(7);
    run(&mut it, &step5[start..end]);

    let t = table(it.var("t").unwrap()).clone();
    assert_eq!(t.rows(), 1_210_000);
    let names: Vec<&str> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "SecurityID",
            "DateTime",
            "PreClosePx",
            "OpenPx",
            "HighPx",
            "LowPx",
            "LastPx",
            "Volume",
            "Amount"
        ]
    );
    let sec = strings(t.column("SecurityID").unwrap());
    assert_eq!(
        (
            &sec[0][..],
            &sec[241][..],
            &sec[242][..],
            &sec[1_209_999][..]
        ),
        ("000000", "000000", "000001", "004999")
    );
    let dt = t.column("DateTime").unwrap();
    assert_eq!(dt.ty, DataType::DateTime);
    let ColumnData::I32(times) = &dt.data else {
        panic!()
    };
    assert_eq!(times[0], 1_673_170_200, "2023.01.08T09:30:00");
    assert_eq!(times[121], 1_673_182_800, "2023.01.08T13:00:00");
    let last = f64s(t.column("LastPx").unwrap());
    assert!(
        last.iter()
            .all(|p| (10.0..=11.0).contains(p) && ((p * 100.0).round() / 100.0 - p).abs() < 1e-9),
        "prices are round(10+rand(1.0), 2)"
    );
    let ColumnData::I32(vol) = &t.column("Volume").unwrap().data else {
        panic!("Volume is INT")
    };
    let amount = f64s(t.column("Amount").unwrap());
    for i in [0, 500_000, 1_209_999] {
        assert_eq!(amount[i], (last[i] * vol[i] as f64 * 100.0).round() / 100.0);
    }

    // Step 6, on the in-memory table.
    let q1 = run(
        &mut it,
        "select count(*) from t group by date(DateTime) as Date",
    );
    let q1 = table(&q1);
    assert_eq!(q1.rows(), 1);
    assert_eq!(q1.columns[0].0, "Date");
    assert_eq!(q1.columns[1].1.data, ColumnData::I64(vec![1_210_000]));

    run(&mut it, "result = select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close from t group by date(DateTime) as Date, SecurityID");
    let r = table(it.var("result").unwrap()).clone();
    assert_eq!(r.rows(), 5000);
    let names: Vec<&str> = r.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Date", "SecurityID", "Open", "High", "Low", "Close"]
    );
    // An independent computation over the same columns.
    let mut want: BTreeMap<&str, (f64, f64, f64, f64)> = BTreeMap::new();
    for (i, s) in sec.iter().enumerate() {
        let p = last[i];
        want.entry(s)
            .and_modify(|e| {
                e.1 = e.1.max(p);
                e.2 = e.2.min(p);
                e.3 = p;
            })
            .or_insert((p, p, p, p));
    }
    let (ids, open, high, low, close) = (
        strings(&r.columns[1].1),
        f64s(&r.columns[2].1),
        f64s(&r.columns[3].1),
        f64s(&r.columns[4].1),
        f64s(&r.columns[5].1),
    );
    for (k, (id, w)) in want.iter().enumerate() {
        assert_eq!(&ids[k], id);
        assert_eq!((open[k], high[k], low[k], close[k]), *w, "security {id}");
    }
}

#[test]
fn operators_and_builtins() {
    let mut it = Interp::new(1);
    let v = |it: &mut Interp, s: &str| match run(it, s) {
        Value::Scalar(c) | Value::Vector(c) => (0..c.len())
            .map(|i| lang::eval::render_value(&c, i))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.typestr(),
    };
    assert_eq!(v(&mut it, "1 + 2 * 3"), "7");
    assert_eq!(v(&mut it, "7 / 2"), "3", "integer division, as DolphinDB");
    assert_eq!(v(&mut it, "7 \\ 2"), "3.5");
    assert_eq!(v(&mut it, "1..5 * 2"), "2 4 6 8 10");
    assert_eq!(v(&mut it, "5..1"), "5 4 3 2 1");
    assert_eq!(v(&mut it, "til(3) + 1"), "1 2 3");
    assert_eq!(v(&mut it, "1 2 3 > 2"), "false false true");
    assert_eq!(v(&mut it, "sum(1..100)"), "5050");
    assert_eq!(v(&mut it, "avg(1 2 3 4)"), "2.5");
    assert_eq!(v(&mut it, "max(3 9 2)"), "9");
    assert_eq!(v(&mut it, "cumsum(1 2 3)"), "1 3 6");
    assert_eq!(v(&mut it, "take(1 2, 5)"), "1 2 1 2 1");
    assert_eq!(v(&mut it, "lpad(string(7 42), 3, `0)"), "007 042");
    assert_eq!(v(&mut it, "upper(`ab`cd)"), "AB CD");
    assert_eq!(v(&mut it, "2 5 in 1 2 3"), "true false");
    assert_eq!(v(&mut it, "round(3.14159, 2)"), "3.14");
    assert_eq!(v(&mut it, "date(2023.01.08T09:30:00)"), "2023.01.08");
    assert_eq!(
        v(&mut it, "def f(x, y) { return x * 10 + y }\nf(4, 2)"),
        "42"
    );
    assert_eq!(v(&mut it, "g = add{100, }\ng(5)"), "105");
    assert_eq!(v(&mut it, "sub{, 1}(10)"), "9");
    assert_eq!(v(&mut it, "h = def(x): x * x\nh(9)"), "81");
    assert_eq!(v(&mut it, "s = 0\nfor (i in 1..4) { s = s + i }\ns"), "10");
    assert_eq!(v(&mut it, "k = 3\ndo { k = k - 1 } while (k > 0)\nk"), "0");
    assert_eq!(v(&mut it, "if (1 > 2) { z = 1 } else { z = 2 }\nz"), "2");
    assert_eq!(v(&mut it, "typestr(1..3)"), "FAST INT VECTOR");
    assert_eq!(
        v(
            &mut it,
            "t = table(1 2 3 as a, 4 5 6 as b)\nexec b from t where a >= 2"
        ),
        "5 6"
    );
    assert_eq!(v(&mut it, "x = 1 2 3\nx.sum()"), "6");
    run(&mut it, "print(\"hello\", 1 2)");
    assert_eq!(it.output.last().unwrap(), "hello 1 2");
}

#[test]
fn errors_name_the_function_and_the_position() {
    let mut it = Interp::new(1);
    let e = it.run_now("x = 1\ny = nosuch(x)").unwrap_err();
    assert_eq!(e.pos.map(|p| (p.line, p.col)), Some((2, 5)), "{e}");
    assert!(
        e.to_string().contains("Cannot recognize the token nosuch"),
        "{e}"
    );
    let e = it.run_now("take(1)").unwrap_err();
    assert!(
        e.to_string().contains(
            "The function [take] expects 2 argument(s), but the actual number of arguments is 1"
        ),
        "{e}"
    );
    let e = it.run_now("z = 1 + `a").unwrap_err();
    assert!(
        e.to_string().contains("cannot apply + to INT and STRING"),
        "{e}"
    );
    assert_eq!(e.pos.map(|p| p.line), Some(1));
    let e = it.run_now("def f(a) { return a }\nf(1, 2)").unwrap_err();
    assert!(
        e.to_string()
            .contains("The function [f] expects 1 argument(s)"),
        "{e}"
    );
    let e = it.run_now("login(\"admin\", \"wrong\")").unwrap_err();
    assert!(e.to_string().contains("password is incorrect"), "{e}");
    let e = it
        .run_now("database(\"dfs://x\", VALUE, 1..3)")
        .unwrap_err();
    assert!(e.to_string().contains("needs DFS databases"), "{e}");
    let e = it
        .run_now("t = table(1 2 as a)\nselect a, 1 2 3 as b from t")
        .unwrap_err();
    assert!(e.to_string().contains("expected 2 rows"), "{e}");
    let e = it.run_now("take(1, 100000000000)").unwrap_err();
    assert!(
        e.to_string().contains("would create 100000000000 elements"),
        "{e}"
    );
    let e = it.run_now("def r(x) { return r(x) }\nr(1)").unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let mut it = Interp::new(1);
    // Nearly as deep as the parser allows (each parenthesis costs it 2 levels): evaluates
    // without exhausting a 2 MiB thread stack.
    let depth = lang::parse::NESTING_MAX / 2 - 2;
    let src = format!("{}1{}", "(".repeat(depth), " + 1)".repeat(depth));
    assert_eq!(it.run_now(&src).unwrap().column().unwrap().len(), 1);
    let src = format!("{}1{}", "(".repeat(depth * 2), ")".repeat(depth * 2));
    assert!(it
        .run_now(&src)
        .unwrap_err()
        .to_string()
        .contains("nesting deeper"));
    // The worst case: maximal recursion, each level evaluating a deep expression.
    let body = format!("{}x{}", "(".repeat(40), " + 0)".repeat(40));
    let e = it
        .run_now(&format!("def deep(x) {{ return deep({body}) }}\ndeep(1)"))
        .unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
    assert_eq!(
        it.run_now("1 + 1").unwrap().column().unwrap().len(),
        1,
        "the session survives"
    );
}

#[test]
fn objs_lists_the_sessions_variables_with_their_shape() {
    let mut it = Interp::new(1);
    run(
        &mut it,
        "t = table(1..5 as id, `a`b`c`d`e as sym)\nv = 1.0 2.0 3.0\nx = 7\ndef f(a) { return a }",
    );
    for shared in ["objs()", "objs(true)"] {
        let o = run(&mut it, shared);
        let o = table(&o);
        let col = |n: &str| &o.columns.iter().find(|(c, _)| c == n).unwrap().1;
        assert_eq!(
            strings(col("name")),
            ["t", "v", "x"],
            "functions are not listed"
        );
        assert_eq!(strings(col("form")), ["TABLE", "VECTOR", "SCALAR"]);
        assert_eq!(strings(col("type")), ["BASIC", "DOUBLE", "INT"]);
        assert_eq!(col("rows").data, ColumnData::I32(vec![5, 3, 1]));
        assert_eq!(col("columns").data, ColumnData::I32(vec![2, 1, 1]));
        let ColumnData::I64(bytes) = &col("bytes").data else {
            panic!("bytes is LONG")
        };
        assert_eq!(bytes[1], 24, "three doubles");
        assert!(bytes[0] >= 5 * 4, "{bytes:?}");
    }
}
