//! Property test: evaluating generated expressions and statements never panics — every
//! outcome is a value or an error message.

use lang::eval::Interp;
use proptest::prelude::*;

fn atom() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "1",
        "0",
        "-3",
        "2.5",
        "`a",
        "'s'",
        "1 2 3",
        "1..4",
        "til(3)",
        "NULL",
        "2023.01.08",
        "09:30:00",
        "true",
        "x",
        "t",
        "[1, 2]",
        "(1, `a)",
        "1:3",
        "take(1 2, 4)",
        "table(1 2 as a, 3 4 as b)",
    ])
    .prop_map(String::from)
}

fn expr() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "\\", "%", "<", "==", "&&", "..", ":", "$", "in"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            (
                prop::sample::select(vec![
                    "sum",
                    "avg",
                    "max",
                    "first",
                    "size",
                    "string",
                    "int",
                    "date",
                    "round",
                    "cumsum",
                    "sort",
                    "isNull",
                    "typestr",
                    "neg",
                    "std",
                    "med",
                    "deltas",
                    "ratios",
                    "log",
                    "exp",
                    "month",
                    "minute",
                    "second",
                    "datetime",
                    "set",
                    "matrix",
                    "keys",
                    "transpose",
                    "distinct"
                ]),
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("take({a}, {b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("iif({a}, {b}, {c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("wavg({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("nullFill({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("concat({a}, {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("temporalAdd({a}, {b}, `M)")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics(e in expr(), s in expr()) {
        let mut it = Interp::new(3);
        let _ = it.run_now("x = 1 2 3\nt = table(1 2 3 as a)");
        let _ = it.run_now(&e);
        let _ = it.run_now(&format!("y = {s}\nselect count(*) from t where a > 1"));
        let _ = it.run_now(&format!("select a, {s} as b from t context by a order by a desc limit 2"));
        let _ = it.run_now(&format!("update t set a = {e} where a > 1"));
    }
}
