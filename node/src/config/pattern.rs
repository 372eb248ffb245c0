//! Alias wildcards in `alias.key=value` overrides: `%` matches any run of characters (also
//! none), `?` exactly one. Matching is case-sensitive, like aliases.

/// Whether `pattern` contains a wildcard.
pub fn is_wildcard(pattern: &str) -> bool {
    pattern.contains(['%', '?'])
}

/// Whether `alias` matches `pattern`. Linear in `pattern.len() * alias.len()`.
pub fn matches(pattern: &str, alias: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let a: Vec<char> = alias.chars().collect();
    // Classic two-pointer glob match with backtracking to the last '%'.
    let (mut pi, mut ai) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ai < a.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == a[ai]) {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ai));
            pi += 1;
        } else if let Some((sp, sa)) = star {
            pi = sp + 1;
            ai = sa + 1;
            star = Some((sp, sa + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_wildcards() {
        assert!(matches("%-datanode", "P1-datanode"));
        assert!(matches("%-datanode", "-datanode"));
        assert!(!matches("%-datanode", "P1-computenode"));
        assert!(matches("datanode?", "datanode1"));
        assert!(!matches("datanode?", "datanode10"));
        assert!(!matches("datanode?", "datanode"));
        assert!(matches("%", ""));
        assert!(matches("d%n%1", "datanode1"));
        assert!(!matches("DataNode1", "datanode1"), "case-sensitive");
        assert!(matches("datanode1", "datanode1"));
    }

    #[test]
    fn agrees_with_a_reference_matcher() {
        fn reference(p: &[char], a: &[char]) -> bool {
            match (p.first(), a.first()) {
                (None, None) => true,
                (Some('%'), _) => reference(&p[1..], a) || (!a.is_empty() && reference(p, &a[1..])),
                (Some('?'), Some(_)) => reference(&p[1..], &a[1..]),
                (Some(x), Some(y)) if x == y => reference(&p[1..], &a[1..]),
                _ => false,
            }
        }
        let alphabet = ['a', 'b', '%', '?'];
        let mut rng = rt::rand::Rng::with_seed(3);
        for _ in 0..5000 {
            let p: String = (0..rng.below(6))
                .map(|_| alphabet[rng.below(4) as usize])
                .collect();
            let a: String = (0..rng.below(6))
                .map(|_| alphabet[rng.below(2) as usize])
                .collect();
            let pc: Vec<char> = p.chars().collect();
            let ac: Vec<char> = a.chars().collect();
            assert_eq!(
                matches(&p, &a),
                reference(&pc, &ac),
                "pattern {p:?} alias {a:?}"
            );
        }
    }
}
