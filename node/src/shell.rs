//! `porpoise shell`: an interactive DolphinDB console on the Rust client.
//!
//! ```text
//! porpoise shell [-host H] [-port P] [-user U -password W] [-sites h:p,h:p] [-e SCRIPT] [FILE]
//! ```
//!
//! Interactive: line editing and history (saved in `~/.porpoise_history`), input continues
//! over several lines while brackets, quotes or a block comment are open, each entry's value
//! is printed (tables aligned) with the time it took. `-e` and `FILE` run one script and
//! exit: status 0 on success, 1 on a script error, 2 on bad arguments or no connection.

use std::time::Instant;

use client::{Client, ClientError, Config};
use value::display;

pub const USAGE: &str = "\
usage: porpoise shell [options] [FILE]

  -host HOST          server host (default 127.0.0.1)
  -port PORT          server port (default 8848)
  -user USER          log in as USER (with -password)
  -password PASSWORD
  -sites H:P,H:P      more sites: turns on high availability (failover between sites)
  -e SCRIPT           run SCRIPT, print its result and exit
  -timing 0|1         print the time each entry takes (default 1 interactive, 0 otherwise)
  FILE                run the script in FILE and exit

Interactive input continues while brackets or quotes are open; `quit` or Ctrl-D leaves.
";

struct Options {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    sites: Vec<String>,
    script: Option<String>,
    file: Option<String>,
    timing: Option<bool>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: 8848,
        user: None,
        password: None,
        sites: Vec::new(),
        script: None,
        file: None,
        timing: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.trim_start_matches('-') {
            _ if !a.starts_with('-') => {
                if o.file.replace(a.clone()).is_some() {
                    return Err("give at most one script file".into());
                }
            }
            "host" => o.host = value("-host")?,
            "port" => {
                let v = value("-port")?;
                o.port = v
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("-port: '{v}' is not a port"))?
            }
            "user" | "userId" => o.user = Some(value("-user")?),
            "password" => o.password = Some(value("-password")?),
            "sites" => {
                o.sites = value("-sites")?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "e" => o.script = Some(value("-e")?),
            "timing" => o.timing = Some(value("-timing")? != "0"),
            "h" | "help" => return Err(String::new()),
            other => return Err(format!("unknown option -{other}")),
        }
    }
    if o.user.is_some() != o.password.is_some() {
        return Err("-user and -password go together".into());
    }
    Ok(o)
}

/// Whether `src` leaves a bracket, a quote or a block comment open (the entry goes on).
pub fn needs_more(src: &str) -> bool {
    let b = src.as_bytes();
    let (mut depth, mut i) = (0i64, 0);
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => match src[i + 2..].find("*/") {
                Some(end) => i += end + 3,
                None => return true,
            },
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1 + (b[i] == b'\\') as usize;
                }
                if i >= b.len() {
                    return true;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    depth > 0
}

/// Runs one entry; prints output, the value (or the error) and, if asked, the time taken.
fn execute(c: &mut Client, src: &str, timing: bool) -> Result<(), ClientError> {
    let started = Instant::now();
    let r = c.run(src);
    let elapsed = started.elapsed();
    for m in c.take_output() {
        println!("{m}");
    }
    let r = r.map(|v| {
        let text = display::format(&v);
        if !text.is_empty() {
            println!("{}", text.trim_end_matches('\n'));
        }
    });
    if let Err(e) = &r {
        eprintln!("{e}");
    }
    if timing {
        println!("Time elapsed: {:.3} ms", elapsed.as_secs_f64() * 1e3);
    }
    r
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("PORPOISE_HISTORY")
        .map(Into::into)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".porpoise_history"))
        })
}

fn interactive(c: &mut Client, timing: bool) -> u8 {
    use rustyline::error::ReadlineError;
    let mut ed = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("porpoise shell: cannot open the terminal: {e}");
            return 2;
        }
    };
    let history = history_path();
    if let Some(h) = &history {
        let _ = ed.load_history(h);
    }
    println!(
        "Connected to {} (session {}). Enter scripts; `quit` leaves.",
        c.site(),
        c.session().unwrap_or(0)
    );
    let mut entry = String::new();
    loop {
        let prompt = if entry.is_empty() { ">> " } else { ".. " };
        match ed.readline(prompt) {
            Ok(line) => {
                if entry.is_empty() && matches!(line.trim(), "quit" | "exit" | "quit()") {
                    break;
                }
                if !entry.is_empty() {
                    entry.push('\n');
                }
                entry.push_str(&line);
                if needs_more(&entry) {
                    continue;
                }
                let src = std::mem::take(&mut entry);
                if src.trim().is_empty() {
                    continue;
                }
                let _ = ed.add_history_entry(src.as_str());
                if let Err(e @ (ClientError::Io(_) | ClientError::Exhausted { .. })) =
                    execute(c, &src, timing)
                {
                    eprintln!(
                        "(the connection is reopened on the next entry: {})",
                        e.code()
                    );
                }
            }
            Err(ReadlineError::Interrupted) => entry.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("porpoise shell: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = ed.save_history(h);
    }
    0
}

/// `-console 1`: a console on the node's own port, in a thread of its own, once the node
/// accepts connections. It logs in as `admin` with the default password when it can; the
/// node keeps running when the console ends (`quit`, Ctrl-D or a closed stdin).
pub fn spawn_console(host: String, port: u16) {
    std::thread::spawn(move || {
        let site = format!("{host}:{port}");
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let mut c = loop {
            let Ok(cfg) = Config::try_new(&site) else {
                return;
            };
            let attempt = Client::connect(cfg.clone().login("admin", "123456"))
                .or_else(|_| Client::connect(cfg));
            match attempt {
                Ok(c) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                Err(e) => {
                    eprintln!("porpoise console: {e}");
                    return;
                }
            }
        };
        interactive(&mut c, true);
    });
}

/// `porpoise shell ...`: returns the process exit status.
pub fn main(args: &[String]) -> u8 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("porpoise shell: {e}");
            }
            eprint!("{USAGE}");
            return if e.is_empty() { 0 } else { 2 };
        }
    };
    let script = match (&o.script, &o.file) {
        (Some(_), Some(_)) => {
            eprintln!("porpoise shell: give -e or a file, not both");
            return 2;
        }
        (Some(s), None) => Some(s.clone()),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("porpoise shell: cannot read {f}: {e}");
                return 2;
            }
        },
        (None, None) => None,
    };
    let mut cfg = match Config::try_new(&format!("{}:{}", o.host, o.port)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("porpoise shell: {e}");
            return 2;
        }
    };
    if let (Some(u), Some(p)) = (&o.user, &o.password) {
        cfg = cfg.login(u, p);
    }
    if !o.sites.is_empty() {
        let sites: Vec<&str> = o.sites.iter().map(|s| s.as_str()).collect();
        cfg = match cfg.high_availability(&sites) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("porpoise shell: {e}");
                return 2;
            }
        };
    }
    let mut c = match Client::connect(cfg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("porpoise shell: {e}");
            return 2;
        }
    };
    match script {
        Some(s) => match execute(&mut c, &s, o.timing.unwrap_or(false)) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        None => interactive(&mut c, o.timing.unwrap_or(true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_continue_while_something_is_open() {
        assert!(!needs_more("1 + 2"));
        assert!(needs_more("def f(x) {"));
        assert!(!needs_more("def f(x) {\n return x\n}"));
        assert!(needs_more("t = table(1 2 as a,"));
        assert!(!needs_more("s = \"(\"  // a ( in a comment"));
        assert!(needs_more("s = 'abc"));
        assert!(needs_more("/* a comment"));
        assert!(!needs_more("/* (( */ x"));
    }

    #[test]
    fn options_parse_like_the_server_options() {
        let o = parse(&["-port".into(), "9000".into(), "-e".into(), "1+1".into()]).unwrap();
        assert_eq!((o.port, o.script.as_deref()), (9000, Some("1+1")));
        assert!(parse(&["-port".into(), "x".into()]).is_err());
        assert!(parse(&["-user".into(), "admin".into()]).is_err());
        assert!(parse(&["-nosuch".into()]).is_err());
    }
}
