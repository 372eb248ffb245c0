//! A damaged controller log, as an operator meets it (docs/OPERATIONS.md): three controllers
//! from `configs/` take acknowledged writes and stop; one byte flipped in the middle of a
//! follower's `raft/log` makes that controller refuse to start, naming the file and the offset;
//! a torn last record on another is cut and that one starts; moving the damaged `raft/` aside,
//! as the guide says, brings the controller back: it rejoins, catches up with every
//! acknowledged change, becomes a voter again, and then carries an election.
#![cfg(not(madsim))]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::*;
use node::controller::raft::log::decode_records;

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config_text(a: SocketAddr) -> Option<String> {
    http(a, "GET", "/config/nodes", "").map(|(_, b)| b)
}

#[test]
fn a_flipped_byte_is_refused_a_torn_tail_is_cut_and_the_guide_brings_the_controller_back() {
    let (root, all) = tutorial_hosts("recovery");
    let hosts = HOSTS;
    let mut procs: Vec<Option<Proc>> = hosts
        .iter()
        .map(|h| Some(start_controller(&root.join(h))))
        .collect();
    let (_, leader, _) = agreed_leader(&all);
    // Twenty acknowledged writes, each its own commit (and flush round on every log).
    let mut want = String::new();
    for i in 0..20 {
        let (status, _) = http(leader, "POST", "/config/nodes", &format!("key{i:02}={i}")).unwrap();
        assert_eq!(status, 200);
        want.push_str(&format!("key{i:02}={i}\n"));
    }
    wait_for("every controller to apply the writes", 20, || {
        all.iter()
            .all(|a| config_text(*a).as_deref() == Some(want.as_str()))
    });
    drop(procs.iter_mut().map(Option::take).collect::<Vec<_>>());
    wait_ports_free(&all);

    let li = all.iter().position(|a| *a == leader).unwrap();
    let damaged = (li + 1) % 3;
    let torn = (li + 2) % 3;
    let raft_dir = |i: usize| {
        root.join(hosts[i])
            .join(format!("data/controller{}/raft", i + 1))
    };

    // One flipped byte in the middle of a follower's log: refused, with file and offset.
    let log = raft_dir(damaged).join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    let (records, _) = decode_records(&bytes).unwrap();
    let (mid, _) = records[records.len() / 2];
    bytes[mid as usize + 20] ^= 0x10;
    std::fs::write(&log, &bytes).unwrap();
    let mut p = start_controller(&root.join(hosts[damaged]));
    let status = wait_exit(&mut p, 20);
    assert!(!status.success(), "a damaged log must stop the controller");
    let stderr = std::fs::read_to_string(root.join(hosts[damaged]).join("stderr.txt")).unwrap();
    assert!(
        stderr.contains("raft/log") && stderr.contains(&format!("offset {mid}")),
        "{stderr}"
    );
    assert!(stderr.contains("OPERATIONS.md"), "{stderr}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        bytes,
        "refusing changes nothing"
    );

    // A torn record after the last one on another controller: cut, and it starts.
    let log = raft_dir(torn).join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    let (_, end) = decode_records(&bytes).unwrap();
    // The next round's record was cut by power loss: its header and a later sector reached
    // the disk, the sectors between did not (they read as the log's zero fill).
    let mut tail = vec![0u8; 2048];
    tail[..4].copy_from_slice(&1500u32.to_le_bytes());
    tail[4..8].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
    tail[8..16].copy_from_slice(&(end as u64).to_le_bytes());
    // The first whole 512-byte sector after the header stays zero; the next one landed.
    let landed = (end + 16).div_ceil(512) * 512 + 512 - end;
    tail[landed + 10..landed + 80].fill(0xab);
    if bytes.len() < end + tail.len() {
        bytes.resize(end + tail.len(), 0);
    }
    bytes[end..end + tail.len()].copy_from_slice(&tail);
    std::fs::write(&log, &bytes).unwrap();
    procs[torn] = Some(start_controller(&root.join(hosts[torn])));
    procs[li] = Some(start_controller(&root.join(hosts[li])));
    let two = [all[li], all[torn]];
    let (_, leader, _) = agreed_leader(&two);
    wait_for("the torn controller to serve every write", 20, || {
        config_text(all[torn]).as_deref() == Some(want.as_str())
    });

    // The guide: move the refused raft directory aside and start the controller again.
    std::fs::rename(
        raft_dir(damaged),
        raft_dir(damaged).with_file_name("raft.damaged"),
    )
    .unwrap();
    procs[damaged] = Some(start_controller(&root.join(hosts[damaged])));
    let (status, _) = http(leader, "POST", "/config/nodes", "afterRejoin=1").unwrap();
    assert_eq!(status, 200);
    want.push_str("afterRejoin=1\n");
    // keys sort, so the new key comes first.
    let mut lines: Vec<&str> = want.lines().collect();
    lines.sort_unstable();
    let want: String = lines.iter().map(|l| format!("{l}\n")).collect();
    wait_for("the rejoined controller to catch up and vote", 30, || {
        let raft = http(all[damaged], "GET", "/raft", "").map(|(_, b)| b);
        raft.as_deref().and_then(|r| field(r, "standing")) == Some("voter")
            && config_text(all[damaged]).as_deref() == Some(want.as_str())
    });

    // It votes again: with the old leader gone, it and the other one elect a leader that has
    // everything acknowledged.
    let lj = all.iter().position(|a| *a == leader).unwrap();
    drop(procs[lj].take());
    let rest: Vec<SocketAddr> = all.iter().copied().filter(|a| *a != leader).collect();
    let (_, new_leader, _) = agreed_leader(&rest);
    assert_eq!(config_text(new_leader).as_deref(), Some(want.as_str()));
    let (status, _) = http(new_leader, "POST", "/config/nodes", "afterFailover=1").unwrap();
    assert_eq!(status, 200);

    drop(procs);
    wait_ports_free(&all);
}

fn wait_exit(p: &mut Proc, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the controller did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}
