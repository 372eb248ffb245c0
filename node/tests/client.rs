//! The Rust client (`client` crate) and `porpoise shell` against real `porpoise -mode single`
//! processes: scripts, function calls, uploads, print output, errors, login; failover on a
//! `<NotLeader>` redirect (from a stand-in follower speaking the protocol) and on a killed
//! server; the shell's `-e`, file and interactive (piped) modes.
#![cfg(not(madsim))]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use client::{protocol, Client, ClientError, Config};
use storage::column::{Column, ColumnData};
use storage::types::DataType;
use value::{Table, Value};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_porpoise")
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(port: u16, name: &str) -> Node {
    start_with(port, name, &[], Stdio::null(), Stdio::null())
}

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("client-{name}"))
}

fn start_with(port: u16, name: &str, extra: &[&str], stdin: Stdio, stdout: Stdio) -> Node {
    let dir = scratch(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    spawn_in(port, name, extra, stdin, stdout)
}

/// Starts a node in its existing directory (a restart).
fn spawn_in(port: u16, name: &str, extra: &[&str], stdin: Stdio, stdout: Stdio) -> Node {
    let dir = scratch(name);
    let mut child = Command::new(bin())
        .current_dir(&dir)
        .args(["-mode", "single", "-home", "data", "-localSite"])
        .arg(format!("127.0.0.1:{port}:{name}"))
        .arg("-logFile")
        .arg(dir.join("node.log"))
        .args(extra)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(
            std::fs::File::create(dir.join("stderr.txt"))
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Ready when the node answers /health (a bare connect could reach the listening socket of a
    // node killed a moment ago, which the kernel releases only after tearing down its io_uring).
    loop {
        assert!(child.try_wait().unwrap().is_none(), "porpoise exited early");
        assert!(Instant::now() < deadline, "{addr} never answered");
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut out = String::new();
            if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .is_ok()
                && s.read_to_string(&mut out).is_ok()
                && out.contains("200")
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Node(child)
}

fn site(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn ints(v: &Value) -> Vec<i64> {
    lang::eval::column_i64(v.column().expect("a vector")).unwrap()
}

#[test]
fn scripts_functions_uploads_output_and_errors() {
    let _n = start(18861, "basic");
    let mut c = Client::connect(Config::new(&site(18861)).login("admin", "123456")).unwrap();
    assert_eq!(ints(&c.run("1 + 2").unwrap()), vec![3]);
    assert_eq!(ints(&c.run("cumsum(1 2 3)").unwrap()), vec![1, 3, 6]);
    // A function call with uploaded arguments, and a partial application as the "name".
    assert_eq!(
        ints(&c.call("add", &[Value::int(40), Value::int(2)]).unwrap()),
        vec![42]
    );
    assert_eq!(
        ints(&c.call("add{100, }", &[Value::int(5)]).unwrap()),
        vec![105]
    );
    // A table up and back: every column equal.
    let t = Table {
        columns: vec![
            (
                "id".into(),
                Column {
                    ty: DataType::Int,
                    data: ColumnData::I32(vec![1, 2, i32::MIN]),
                },
            ),
            (
                "sym".into(),
                Column::from_strings(DataType::Symbol, &["A", "B", "A"]),
            ),
            (
                "ts".into(),
                Column {
                    ty: DataType::Timestamp,
                    data: ColumnData::I64(vec![0, 1_673_170_200_000, i64::MIN]),
                },
            ),
        ],
    };
    c.upload(&[("up", Value::Table(Rc::new(t.clone())))])
        .unwrap();
    let Value::Table(back) = c.run("select * from up").unwrap() else {
        panic!("not a table")
    };
    assert_eq!(back.rows(), 3);
    assert_eq!(back.columns[0].1, t.columns[0].1);
    assert_eq!(back.columns[2].1, t.columns[2].1);
    assert_eq!(
        value::display::format(&c.run("exec sym from up").unwrap()),
        "[\"A\",\"B\",\"A\"]"
    );
    // Through arrow2 and back: a downloaded table becomes Arrow arrays (nulls as validity
    // bits), then an upload again.
    let Value::Table(t2) = c
        .run("table(1 2 3 as a, `x`y`x as s, 2023.01.08 NULL 2023.01.10 as d)")
        .unwrap()
    else {
        panic!("not a table")
    };
    let (schema, chunk) = client::arrow::table_to_arrow(&t2).unwrap();
    assert_eq!(chunk.arrays()[2].null_count(), 1);
    let v = client::arrow::table_from_arrow(&schema, &chunk).unwrap();
    c.upload(&[("fromArrow", v)]).unwrap();
    assert_eq!(
        value::display::format(&c.run("x = exec d from fromArrow\nisNull(x)").unwrap()),
        "[false,true,false]"
    );
    assert_eq!(
        value::display::format(&c.run("typestr(exec s from fromArrow)").unwrap()),
        "FAST STRING VECTOR"
    );
    // Print output arrives beside the value.
    c.run("print(\"hello from the server\")").unwrap();
    assert_eq!(c.take_output(), vec!["hello from the server".to_string()]);
    // A server error is an error value; the session lives on.
    let e = c.run("nosuch(1)").unwrap_err();
    assert!(
        matches!(&e, ClientError::Server(m) if m.contains("Cannot recognize the token nosuch")),
        "{e}"
    );
    assert_eq!(ints(&c.run("x = 5\nx * 2").unwrap()), vec![10]);
    // Wrong password: refused at connect.
    let e = Client::connect(Config::new(&site(18861)).login("admin", "nope")).unwrap_err();
    assert_eq!(e.code(), "CLI-002", "{e}");
    // Without a login, dfs:// needs rights.
    let mut anon = Client::connect(Config::new(&site(18861))).unwrap();
    let e = anon
        .run("database('dfs://clientdb', VALUE, 1 2)")
        .unwrap_err();
    assert!(e.to_string().contains("<NoPrivilege>"), "{e}");
    // A start-up script runs on connect.
    let mut s = Client::connect(
        Config::new(&site(18861))
            .login("admin", "123456")
            .startup("def triple(x) { return 3 * x }"),
    )
    .unwrap();
    assert_eq!(ints(&s.run("triple(14)").unwrap()), vec![42]);
}

/// A stand-in follower: accepts connections, opens sessions, and answers every other request
/// with `<NotLeader>` naming `leader`.
fn fake_follower(leader: &str) -> (u16, std::thread::JoinHandle<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let leader = leader.to_string();
    let h = std::thread::spawn(move || {
        let mut redirects = 0;
        l.set_nonblocking(false).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match s.read(&mut chunk) {
                Ok(0) | Err(_) => return redirects,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
                continue;
            };
            let header = String::from_utf8_lossy(&buf[..nl]).to_string();
            let len: usize = header.split_whitespace().nth(2).unwrap().parse().unwrap();
            if buf.len() < nl + 1 + len {
                continue;
            }
            let text = String::from_utf8_lossy(&buf[nl + 1..nl + 1 + len]).to_string();
            buf.clear();
            let reply = if text.starts_with("connect") {
                protocol::encode_reply(7, &[], Ok(&[Value::bool(true)]))
            } else {
                redirects += 1;
                protocol::encode_reply(7, &[], Err(&format!("<NotLeader>{leader}:leader1")))
            };
            s.write_all(&reply).unwrap();
        }
    });
    (port, h)
}

#[test]
fn not_leader_redirects_and_lost_connections_fail_over() {
    let _a = start(18862, "ha-a");
    let b = start(18863, "ha-b");
    // A follower redirects to 18863, a site the client was not given.
    let (fport, follower) = fake_follower(&site(18863));
    let mut c = Client::connect(
        Config::new(&site(fport))
            .login("admin", "123456")
            .high_availability(&[])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(c.site().port, fport);
    assert_eq!(ints(&c.run("21 * 2").unwrap()), vec![42]);
    assert_eq!(c.site().port, 18863, "the client followed <NotLeader>");
    drop(c);
    assert_eq!(follower.join().unwrap(), 1, "one request was redirected");

    // A killed server: the next request goes to the other site, logged in again.
    let mut c = Client::connect(
        Config::new(&site(18863))
            .login("admin", "123456")
            .startup("def who() { return getNodeAlias() }")
            .high_availability(&[&site(18862)])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(value::display::format(&c.run("who()").unwrap()), "ha-b");
    drop(b);
    assert_eq!(
        value::display::format(&c.run("who()").unwrap()),
        "ha-a",
        "the start-up script ran again on the new site"
    );
    assert_eq!(c.site().port, 18862);

    // Without high availability a lost server is an error, not a switch.
    let mut single = Client::connect(Config::new(&site(18862)).timeout_ms(2000)).unwrap();
    drop(_a);
    let e = single.run("1").unwrap_err();
    assert_eq!(e.code(), "CLI-001", "{e}");
}

fn shell(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(bin())
        .arg("shell")
        .args(args)
        .env(
            "PORPOISE_HISTORY",
            format!("{}/shell-history", env!("CARGO_TARGET_TMPDIR")),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shell_runs_one_liners_files_and_interactive_input() {
    let _n = start(18864, "shell");
    let (rc, out, _) = shell(
        &[
            "-port",
            "18864",
            "-e",
            "table(1 2 as id, `a`bbb as name, 2023.01.08 2023.01.09 as d)",
        ],
        "",
    );
    assert_eq!(rc, 0);
    assert_eq!(
        out,
        "id name d\n-- ---- ----------\n1  a    2023.01.08\n2  bbb  2023.01.09\n"
    );
    let (rc, _, err) = shell(&["-port", "18864", "-e", "1 +"], "");
    assert_eq!(rc, 1);
    assert!(err.contains("Syntax Error"), "{err}");
    let (rc, _, err) = shell(&["-port", "1", "-e", "1"], "");
    assert_eq!(rc, 2, "{err}");

    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shell-script.dos");
    std::fs::write(
        &file,
        "def f(x) {\n  return x + 1\n}\nprint(\"in file\")\nf(41)\n",
    )
    .unwrap();
    let (rc, out, _) = shell(&["-port", "18864", file.to_str().unwrap()], "");
    assert_eq!((rc, out.as_str()), (0, "in file\n42\n"));

    // Interactive, piped: a multi-line definition, then a call; every entry is timed.
    let (rc, out, _) = shell(
        &["-port", "18864"],
        "def g(a,\n      b) {\n  return a * b\n}\ng(6, 7)\nquit\n",
    );
    assert_eq!(rc, 0);
    assert!(out.contains("\n42\n"), "{out}");
    assert_eq!(out.matches("Time elapsed:").count(), 2, "{out}");
}

#[test]
fn startup_script_runs_before_clients_and_errors_are_logged() {
    let dir = scratch("startup-files");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("startup.dos");
    std::fs::write(
        &good,
        "if (!existsDatabase(\"dfs://boot\")) {\n  db = database(\"dfs://boot\", VALUE, 1 2)\n  t = table(1 2 as k, 10 20 as v)\n  db.createPartitionedTable(t, `t, `k).append!(t)\n}\nprint(\"boot done\")\n",
    )
    .unwrap();
    let _n = start_with(
        18865,
        "startup",
        &["-script", good.to_str().unwrap()],
        Stdio::null(),
        Stdio::null(),
    );
    let mut c = Client::connect(Config::new(&site(18865)).login("admin", "123456")).unwrap();
    assert_eq!(
        value::display::format(
            &c.run("exec sum(v) from loadTable(\"dfs://boot\", `t)")
                .unwrap()
        ),
        "30"
    );
    let log = std::fs::read_to_string(scratch("startup").join("node.log")).unwrap();
    assert!(
        log.contains("boot done") && log.contains("script_done"),
        "{log}"
    );

    let bad = dir.join("bad.dos");
    std::fs::write(&bad, "x = 1\ny = (x +\n").unwrap();
    let _m = start_with(
        18866,
        "startup-bad",
        &["-script", bad.to_str().unwrap()],
        Stdio::null(),
        Stdio::null(),
    );
    let mut c = Client::connect(Config::new(&site(18866))).unwrap();
    assert_eq!(
        ints(&c.run("1 + 1").unwrap()),
        vec![2],
        "the node starts anyway"
    );
    let log = std::fs::read_to_string(scratch("startup-bad").join("node.log")).unwrap();
    assert!(
        log.contains("script_failed") && log.contains("line #"),
        "{log}"
    );
}

#[test]
fn console_runs_entries_from_stdin() {
    let mut n = start_with(
        18867,
        "console",
        &["-console", "1"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let mut stdin = n.0.stdin.take().unwrap();
    stdin.write_all(b"x = 20\nx * 2 + 2\nquit\n").unwrap();
    drop(stdin);
    let mut out = String::new();
    let mut stdout = n.0.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    // Wait for the whole line: the "42" and its newline may arrive in separate reads.
    while !out.contains("\n42\n") && Instant::now() < deadline {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => out.push_str(&String::from_utf8_lossy(&buf[..k])),
        }
    }
    assert!(out.contains("\n42\n"), "{out}");
    // The node outlives its console.
    let mut c = Client::connect(Config::new(&site(18867))).unwrap();
    assert_eq!(ints(&c.run("3 * 3").unwrap()), vec![9]);
}

#[test]
fn passwords_change_and_persist_across_a_restart() {
    let n = start(18868, "users");
    let admin = |pw: &str| Client::connect(Config::new(&site(18868)).login("admin", pw));
    let mut c = admin("123456").unwrap();
    let e = c.run("changePwd(`wrong, `n3w)").unwrap_err();
    assert!(e.to_string().contains("old password is incorrect"), "{e}");
    c.run("changePwd(`123456, `n3w)\ncreateUser(`bob, `pw1)")
        .unwrap();
    assert_eq!(admin("123456").unwrap_err().code(), "CLI-002");
    admin("n3w").unwrap();
    let mut bob = Client::connect(Config::new(&site(18868)).login("bob", "pw1")).unwrap();
    let e = bob.run("createUser(`eve, `x)").unwrap_err();
    assert!(e.to_string().contains("<NoPrivilege>"), "{e}");
    drop((c, bob));
    drop(n);
    // The same home and port: the listener binds again although the old connections linger.
    let _again = spawn_in(18868, "users", &[], Stdio::null(), Stdio::null());
    let admin = |pw: &str| Client::connect(Config::new(&site(18868)).login("admin", pw));
    let e = admin("123456").unwrap_err();
    assert_eq!(e.code(), "CLI-002", "the change survived: {e}");
    admin("n3w").unwrap();
    // The account file sits in the node's dfsMeta directory, wherever the alias puts it.
    let file = walk(&scratch("users"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|f| f == "users"))
        .expect("an account file");
    let users = std::fs::read_to_string(file).unwrap();
    assert!(
        users.contains("admin ") && !users.contains("n3w"),
        "{users}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
