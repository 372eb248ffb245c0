//! Golden tests: every `tests/golden/*.dos` script runs case by case (cases are separated by
//! lines starting `//---`) in one interpreter per file; each case's printed output and value
//! (as the console shows it, `lang::display`) or its error message is compared with the
//! `.out` file beside it. `PORPOISE_BLESS=1 cargo test -p lang --test golden` rewrites the
//! `.out` files — review the diff before committing it.

use std::path::Path;

use lang::eval::Interp;

fn run_file(src: &str) -> String {
    let mut it = Interp::new(42);
    // Rights are not what these scripts test.
    it.run_now("login(`admin, `123456)").unwrap();
    let mut out = String::new();
    for (i, case) in src.split("\n//---").enumerate() {
        // After a separator, the rest of its line is the case's title.
        let case = match i {
            0 => case,
            _ => case.split_once('\n').map(|(_, rest)| rest).unwrap_or(""),
        };
        let script = case.trim();
        if script.is_empty() {
            continue;
        }
        out.push_str(">> ");
        out.push_str(&script.replace('\n', "\n.. "));
        out.push('\n');
        let r = it.run_now(script);
        for line in it.output.drain(..) {
            out.push_str(&line);
            out.push('\n');
        }
        match r {
            Ok(v) => {
                let text = lang::display::format(&v);
                if !text.is_empty() {
                    out.push_str(text.trim_end_matches('\n'));
                    out.push('\n');
                }
            }
            Err(e) => {
                out.push_str("error: ");
                out.push_str(&e.to_string());
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn golden_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("PORPOISE_BLESS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dos"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden scripts in {}", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let got = run_file(&std::fs::read_to_string(f).unwrap());
        let expected_path = f.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            eprintln!(
                "{}: differs from {} at line {}:\n  got:  {:?}\n  want: {:?}",
                f.display(),
                expected_path.display(),
                first + 1,
                got.lines().nth(first),
                want.lines().nth(first)
            );
            failed.push(f.display().to_string());
        }
    }
    assert!(failed.is_empty(), "golden scripts differ: {failed:?}");
}
