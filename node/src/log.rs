//! The node's structured log: one `logfmt` line per event, appended to `-logFile`.
//!
//! ```text
//! ts=2026-11-25T17:00:00.123Z level=ERROR node=controller1 event=bind_failed msg="Failed to bind the socket on port 8800 with error code 98" addr=127.0.0.80:8800
//! ```
//!
//! The `msg` texts of well-known failures match DolphinDB's (the tutorial's FAQ greps for them).
//! Writes are synchronous and unbuffered: the log is low-volume and must survive a crash.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Severity, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Level {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Level::Debug,
            "WARNING" | "WARN" => Level::Warning,
            "ERROR" => Level::Error,
            _ => Level::Info,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

struct Inner {
    file: Option<File>,
    echo_stderr: bool,
}

/// A cloneable handle to the node's log.
#[derive(Clone)]
pub struct Logger {
    node: String,
    min: Level,
    inner: Arc<Mutex<Inner>>,
    /// The file it appends to, if any (getServerLog reads it).
    path: Option<PathBuf>,
}

/// Formats milliseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

fn quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=')
    {
        v.to_string()
    } else {
        format!(
            "\"{}\"",
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    }
}

impl Logger {
    /// A logger appending to `path` (parent directories are created).
    pub fn open(path: &Path, node: &str, min: Level, echo_stderr: bool) -> std::io::Result<Logger> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Logger {
            node: node.to_string(),
            min,
            inner: Arc::new(Mutex::new(Inner {
                file: Some(file),
                echo_stderr,
            })),
            path: Some(path.to_path_buf()),
        })
    }

    /// The file this logger appends to.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A logger writing to stderr only (before the log file is known).
    pub fn stderr(node: &str) -> Logger {
        Logger {
            node: node.to_string(),
            min: Level::Info,
            inner: Arc::new(Mutex::new(Inner {
                file: None,
                echo_stderr: true,
            })),
            path: None,
        }
    }

    /// A logger that drops everything (simulated nodes, whose output must not touch real files).
    pub fn silent(node: &str) -> Logger {
        Logger {
            node: node.to_string(),
            min: Level::Error,
            inner: Arc::new(Mutex::new(Inner {
                file: None,
                echo_stderr: false,
            })),
            path: None,
        }
    }

    /// Writes one event with extra `key=value` fields.
    pub fn event(&self, level: Level, event: &str, msg: &str, fields: &[(&str, &str)]) {
        if level < self.min {
            return;
        }
        let mut line = format!(
            "ts={} level={} node={} event={} msg={}",
            rfc3339_ms(rt::time::unix_time_ms()),
            level.as_str(),
            quote(&self.node),
            quote(event),
            quote(msg)
        );
        for (k, v) in fields {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(&quote(v));
        }
        line.push('\n');
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = inner.file.as_mut() {
            // A full disk must not take the node down with it; the echo below still reports.
            let _ = f.write_all(line.as_bytes());
        }
        if inner.echo_stderr || (level >= Level::Error && inner.file.is_some()) {
            eprint!("{line}");
        }
    }

    pub fn debug(&self, event: &str, msg: &str, fields: &[(&str, &str)]) {
        self.event(Level::Debug, event, msg, fields)
    }

    pub fn info(&self, event: &str, msg: &str, fields: &[(&str, &str)]) {
        self.event(Level::Info, event, msg, fields)
    }

    pub fn warn(&self, event: &str, msg: &str, fields: &[(&str, &str)]) {
        self.event(Level::Warning, event, msg, fields)
    }

    pub fn error(&self, event: &str, msg: &str, fields: &[(&str, &str)]) {
        self.event(Level::Error, event, msg, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_673_170_200_123), "2023-01-08T09:30:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn quotes_values_that_need_it() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("has space"), "\"has space\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote(""), "\"\"");
    }
}
