//! Property tests for the parser (the fuzz target `fuzz/fuzz_targets/parser.rs` drives the same
//! entry points): arbitrary text never panics, and generated expressions parse to the tree
//! they were built from.

use lang::parse::ast::{ExprKind, Lit};
use lang::parse::{parse, parse_expr};
use proptest::prelude::*;

/// A generated expression and its expected fully-parenthesised rendering.
fn arb_expr() -> impl Strategy<Value = (String, String)> {
    let leaf = prop_oneof![
        (0i64..1000).prop_map(|v| (v.to_string(), v.to_string())),
        "[a-z][a-z0-9]{0,4}"
            .prop_filter("not a keyword", |s| !matches!(
                s.as_str(),
                "in" | "or" | "and" | "not" | "as" | "def" | "if" | "do" | "for"
            ))
            .prop_map(|s| (s.clone(), s)),
    ];
    leaf.prop_recursive(4, 32, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/", "&&", "||", "<", "..", ":"]),
                inner.clone()
            )
                .prop_map(|((a, ra), op, (b, rb))| (
                    format!("({a}) {op} ({b})"),
                    format!("({ra} {op} {rb})")
                )),
            // `fn` keeps generated names clear of keywords and literals (`not`, `true`,
            // `exec` would not parse as calls).
            ("fn[a-z]{1,3}", inner.clone())
                .prop_map(|(f, (a, ra))| (format!("{f}({a})"), format!("{f}({ra})"))),
        ]
    })
}

fn render(e: &lang::parse::ast::Expr) -> String {
    match &e.kind {
        ExprKind::Lit(Lit::Int(v, None)) => v.to_string(),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Binary { op, left, right } => {
            format!("({} {op} {})", render(left), render(right))
        }
        ExprKind::Call { func, args } => {
            format!(
                "{}({})",
                render(func),
                args.iter()
                    .map(|a| render(&a.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        other => format!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        let _ = parse(&src);
        let _ = parse_expr(&src);
    }

    #[test]
    fn script_like_text_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "x", "=", "1", "2021.01.01", "`a", "(", ")", "[", "]", "{", "}", ",", ";", "\n", "select", "from",
        "where", "group", "by", "as", "def", "if", "else", "for", "in", "..", ":", "->", "+", "*", "'s'",
        "09:30:00", "t.f", "!", "-", "do", "while", "return", "update", "set", "delete", "insert", "into", "values",
    ]), 0..40)) {
        let src = parts.join(" ");
        let _ = parse(&src);
    }

    #[test]
    fn generated_expressions_parse_to_their_tree((src, expected) in arb_expr()) {
        let e = parse_expr(&src).unwrap();
        prop_assert_eq!(render(&e), expected);
    }
}
