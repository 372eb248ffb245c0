//! Property test (issue 19): every vector function of the time-series library gives, inside
//! `select … context by g`, exactly what it gives on each group's vector alone, groups in
//! key order — with nulls, ties and groups of one row among the generated cases. Run through
//! the interpreter, as a client's script would.

use lang::eval::Interp;
use proptest::prelude::*;

/// The functions under test, as expressions over the columns `x`, `y` (INT with nulls) and
/// `time` (increasing).
const FUNCTIONS: &[&str] = &[
    "msum(x, 3)",
    "mavg(x, 2, 1)",
    "mmax(x, 3)",
    "mmin(x, 2)",
    "mstd(x, 3)",
    "mcount(x, 2)",
    "mfirst(x, 2)",
    "mlast(x, 3)",
    "mmed(x, 3)",
    "mrank(x, true, 3)",
    "mcorr(x, y, 3)",
    "mbeta(y, x, 3)",
    "mpercentile(x, 50, 3)",
    "moving(sum, x, 2)",
    "tmsum(time, x, 3)",
    "tmavg(time, x, 4)",
    "tmmax(time, x, 3)",
    "tmcount(time, x, 5)",
    "ema(x, 2)",
    "wma(x, 2)",
    "cumsum(x)",
    "cumprod(x)",
    "cummax(x)",
    "cumavg(x)",
    "cumcount(x)",
    "cumrank(x)",
    "prev(x)",
    "next(x)",
    "move(x, 2)",
    "ffill(x)",
    "bfill(x, 1)",
    "lfill(x)",
    "rank(x)",
    "denseRank(x, false)",
    "zscore(x)",
    "deltas(x)",
];

fn literal(v: &[Option<i32>]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|x| x.map_or("NULL".to_string(), |x| x.to_string()))
        .collect();
    // A trailing 0 types the vector INT even when every element is null; `[til(n)]` drops it.
    format!("int([{}, 0])[til({})]", items.join(", "), v.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn context_by_equals_each_group_alone(
        rows in proptest::collection::vec(
            (0i32..3, proptest::option::weighted(0.8, -5i32..6), proptest::option::weighted(0.9, -5i32..6)),
            1..24,
        ),
    ) {
        let g: Vec<Option<i32>> = rows.iter().map(|r| Some(r.0)).collect();
        let x: Vec<Option<i32>> = rows.iter().map(|r| r.1).collect();
        let y: Vec<Option<i32>> = rows.iter().map(|r| r.2).collect();
        let mut it = Interp::new(7);
        it.run_now(&format!(
            "t = table({} as g, {} as x, {} as y, 0..{} as time)",
            literal(&g), literal(&x), literal(&y), rows.len() - 1
        )).unwrap();
        for f in FUNCTIONS {
            let script = format!(
                "a = exec {f} as v from t context by g\n\
                 b = take(0.0, 0)\n\
                 for (k in sort(distinct(t.g))) {{\n\
                   s = select * from t where g == k\n\
                   x = s.x\n y = s.y\n time = s.time\n\
                   b = b join double({f})\n\
                 }}\n\
                 eqObj(double(a), double(b))"
            );
            let r = it.run_now(&script);
            let same = r.as_ref().map(lang::display::format);
            prop_assert_eq!(same.as_deref(), Ok("true"), "{} over {:?}: {:?}", f, rows, r);
        }
    }
}
