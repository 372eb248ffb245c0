//! `GET /metrics`: a node's state in Prometheus' text exposition format (version 0.0.4), on
//! every node's own port (issue 18). Each role writes its own numbers into one [`Exposition`]
//! (`ControllerService::metrics`, `DataNodeService::metrics`, `ScriptSessions::metrics`,
//! `Probe::metrics`); this module owns only the format and the latency histogram.
//!
//! Invariants:
//! - a metric's `# HELP` and `# TYPE` lines come once, before its first sample, and all its
//!   samples follow them together (the format requires one group per name);
//! - names are `porpoise_` snake case; label values are escaped (`\\`, `"`, newline), so no
//!   alias or path can break a line;
//! - a histogram's buckets are cumulative and end with `+Inf`, whose count equals `_count`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What a metric is, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric's lines: its header and samples, kept together whatever order they are added.
struct Family {
    help: &'static str,
    kind: Kind,
    samples: String,
}

/// Metrics being written, grouped by name in the order first named.
#[derive(Default)]
pub struct Exposition {
    order: Vec<&'static str>,
    families: BTreeMap<&'static str, Family>,
}

impl Exposition {
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        self.sample(name, help, Kind::Gauge, "", labels, v);
    }

    /// A counter: `name` ends in `_total`, as the format's convention has it.
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        debug_assert!(
            name.ends_with("_total"),
            "{name}: a counter's name ends in _total"
        );
        self.sample(name, help, Kind::Counter, "", labels, v);
    }

    pub fn histogram(&mut self, name: &'static str, help: &'static str, h: &Histogram) {
        let mut cumulative = 0;
        for (bound, n) in LATENCY_BOUNDS.iter().zip(&h.counts) {
            cumulative += n;
            let le = format!("{bound}");
            self.sample(
                name,
                help,
                Kind::Histogram,
                "_bucket",
                &[("le", &le)],
                cumulative as f64,
            );
        }
        debug_assert!(cumulative <= h.count, "a bucket counts only observations");
        self.sample(
            name,
            help,
            Kind::Histogram,
            "_bucket",
            &[("le", "+Inf")],
            h.count as f64,
        );
        self.sample(name, help, Kind::Histogram, "_sum", &[], h.sum);
        self.sample(name, help, Kind::Histogram, "_count", &[], h.count as f64);
    }

    fn sample(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        suffix: &str,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        debug_assert!(
            name.starts_with("porpoise_")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}: not a porpoise_ snake-case name"
        );
        let f = self.families.entry(name).or_insert_with(|| {
            self.order.push(name);
            Family {
                help,
                kind,
                samples: String::new(),
            }
        });
        debug_assert_eq!(f.kind, kind, "{name} is one kind of metric");
        let _ = write!(f.samples, "{name}{suffix}");
        if !labels.is_empty() {
            f.samples.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    f.samples.push(',');
                }
                let _ = write!(f.samples, "{k}=\"{}\"", escape(v));
            }
            f.samples.push('}');
        }
        let _ = writeln!(f.samples, " {}", number(v));
    }

    /// The exposition text.
    pub fn finish(self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let f = &self.families[name];
            let _ = writeln!(out, "# HELP {name} {}", f.help);
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
            out.push_str(&f.samples);
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others as Rust prints them (`NaN` and the
/// infinities as the format spells them).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Upper bounds, in seconds, of the latency buckets (a query of the tutorial's takes from
/// about a millisecond to a second).
pub const LATENCY_BOUNDS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// A latency histogram over [`LATENCY_BOUNDS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; one above every bound is only in `count` (the
    /// `+Inf` bucket).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; LATENCY_BOUNDS.len()],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BOUNDS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// A histogram a role updates as it works and reads when asked.
#[derive(Default)]
pub struct Latency(RefCell<Histogram>);

impl Latency {
    pub fn observe(&self, seconds: f64) {
        self.0.borrow_mut().observe(seconds);
    }

    pub fn get(&self) -> Histogram {
        self.0.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_group_their_samples_under_one_header_and_labels_are_escaped() {
        let mut e = Exposition::default();
        e.gauge(
            "porpoise_up",
            "Whether the node is up.",
            &[("alias", "a\"b\\c\nd")],
            1.0,
        );
        e.counter("porpoise_rows_total", "Rows.", &[], 7.0);
        e.gauge(
            "porpoise_up",
            "Whether the node is up.",
            &[("alias", "x")],
            0.5,
        );
        assert_eq!(
            e.finish(),
            "# HELP porpoise_up Whether the node is up.\n\
             # TYPE porpoise_up gauge\n\
             porpoise_up{alias=\"a\\\"b\\\\c\\nd\"} 1\n\
             porpoise_up{alias=\"x\"} 0.5\n\
             # HELP porpoise_rows_total Rows.\n\
             # TYPE porpoise_rows_total counter\n\
             porpoise_rows_total 7\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::default();
        for s in [0.0005, 0.003, 0.003, 0.2, 30.0] {
            h.observe(s);
        }
        let mut e = Exposition::default();
        e.histogram("porpoise_query_seconds", "Query latency.", &h);
        let text = e.finish();
        let bucket = |le: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("porpoise_query_seconds_bucket{{le=\"{le}\"}}")))
                .unwrap_or_else(|| panic!("no bucket {le}:\n{text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert_eq!(bucket("0.001"), 1.0);
        assert_eq!(bucket("0.005"), 3.0);
        assert_eq!(bucket("0.1"), 3.0);
        assert_eq!(bucket("0.5"), 4.0);
        assert_eq!(bucket("10"), 4.0);
        assert_eq!(bucket("+Inf"), 5.0);
        assert!(text.contains("porpoise_query_seconds_count 5\n"));
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("porpoise_query_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 30.2065).abs() < 1e-9, "{text}");
        assert_eq!(
            text.matches("# TYPE porpoise_query_seconds histogram")
                .count(),
            1
        );
    }
}
