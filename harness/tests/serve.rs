//! `gpaxos-harness serve`: concurrent connections with timeouts, the
//! table of runs, content types, and paths confined to the store. The
//! server runs in this process on an ephemeral port; requests are written
//! by hand on raw sockets, so a refused path reaches the server as sent.

use gpaxos_harness::serve::{self, Limits};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A store with three runs as the harness leaves them: a valid one with
/// faults, a newer invalid one, and a newest one not judged yet.
fn store(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("gpaxos-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let valid = r#"{"verdict":"valid","ok":120,"fail":3,"info":2,
        "faults":["   3.0s partition: isolate n2","   9.0s kill: n1 n3 (restarted)"]}"#;
    let invalid = r#"{"verdict":"invalid","ok":40,"fail":0,"info":1,"faults":[]}"#;
    run(&root, "kv-partition+kill/20260101T100000", Some(valid));
    run(&root, "kv-partition+kill/20260102T100000", Some(invalid));
    run(&root, "suite-ci/bank-all/20260103T100000", None);
    std::os::unix::fs::symlink("kv-partition+kill/20260102T100000", root.join("latest")).unwrap();
    root
}

fn run(root: &Path, rel: &str, summary: Option<&str>) {
    let dir = root.join(rel);
    std::fs::create_dir_all(dir.join("nodes")).unwrap();
    std::fs::write(dir.join("test.json"), "{}").unwrap();
    std::fs::write(dir.join("history.jsonl"), "{\"type\":\"nemesis\"}\n").unwrap();
    std::fs::write(dir.join("harness.log"), "INFO setup\n").unwrap();
    std::fs::write(dir.join("nodes/n1.log"), "node n1\n").unwrap();
    std::fs::write(dir.join("nodes/n10.log"), "node n10\n").unwrap();
    std::fs::write(dir.join("latency.svg"), "<svg/>").unwrap();
    if let Some(s) = summary {
        std::fs::write(dir.join("summary.json"), s).unwrap();
        std::fs::write(dir.join("report.html"), "<!doctype html><p>report").unwrap();
    }
}

/// Starts the server on a thread of its own; its address.
fn start(store: PathBuf, limits: Limits) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve::run(listener, store, limits).await
        })
    });
    rx.recv().unwrap()
}

/// One GET of `target` as sent; the status line's code, the head and the
/// body.
fn get(addr: SocketAddr, target: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn an_idle_connection_stalls_no_one_and_is_closed() {
    let limits = Limits {
        header_read: Duration::from_secs(2),
        request: Duration::from_secs(5),
    };
    let addr = start(store("idle"), limits);
    // One connection that sends nothing, one that stops in the middle of
    // its request head.
    let mut idle = TcpStream::connect(addr).unwrap();
    let mut partial = TcpStream::connect(addr).unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    let (code, _, body) = get(addr, "/");
    let took = asked.elapsed();
    assert_eq!(code, 200);
    assert!(body.contains("gpaxos runs"));
    assert!(took < Duration::from_millis(500), "answered in {took:?}");
    // The server closes both once their heads are 2 s late.
    for s in [&mut idle, &mut partial] {
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let mut buf = [0u8; 512];
        let n = s
            .read(&mut buf)
            .expect("closed by the server, not timed out here");
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    assert!(asked.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_table_lists_runs_newest_first_with_verdicts_and_links() {
    let addr = start(store("table"), Limits::default());
    let (code, head, page) = get(addr, "/");
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    let newest = page.find("20260103T100000/").expect("the unjudged run");
    let invalid = page.find("20260102T100000/").expect("the invalid run");
    let valid = page.find("20260101T100000/").expect("the valid run");
    assert!(newest < invalid && invalid < valid, "newest first");
    assert!(page.contains("<span class=\"v valid\">valid</span>"));
    assert!(page.contains("<span class=\"v invalid\">invalid</span>"));
    assert!(page.contains("not judged"));
    assert!(page.contains("2026-01-01 10:00:00"));
    assert!(page.contains("<td class=n>120</td><td class=n>3</td><td class=n>2</td>"));
    assert!(
        page.contains("2 <small>partition, kill</small>"),
        "fault kinds"
    );
    assert!(
        page.contains("<td>suite-ci/bank-all</td>"),
        "suite runs found"
    );
    // store/latest is a symlink to a run already listed.
    assert_eq!(page.matches("<tr><td>").count(), 3);
    let base = "/kv-partition+kill/20260101T100000/";
    for (file, ctype) in [
        ("report.html", "text/html"),
        ("history.jsonl", "application/x-ndjson"),
        ("harness.log", "text/plain"),
        ("nodes/n1.log", "text/plain"),
        ("nodes/n10.log", "text/plain"),
    ] {
        let href = format!("href=\"{}{file}\"", base.replace('+', "%2B"));
        assert!(page.contains(&href), "{href} in the table");
        let (code, head, _) = get(addr, &format!("{base}{file}"));
        assert_eq!(code, 200, "{file}");
        assert!(
            head.contains(&format!("content-type: {ctype}")),
            "{file}: {head}"
        );
    }
    assert!(page.find("nodes/n1.log").unwrap() < page.find("nodes/n10.log").unwrap());
    let (_, head, _) = get(addr, &format!("{base}latency.svg"));
    assert!(head.contains("content-type: image/svg+xml"), "{head}");
    // A run directory without its slash is sent to it; with it, listed.
    let (code, head, _) = get(addr, "/latest");
    assert_eq!(code, 308);
    assert!(head.contains("location: /latest/"), "{head}");
    let (code, _, listing) = get(addr, "/latest/");
    assert_eq!(code, 200);
    assert!(listing.contains("href=\"harness.log\""), "{listing}");
}

#[test]
fn paths_out_of_the_store_are_refused() {
    let root = store("traversal");
    std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
    let addr = start(root, Limits::default());
    for target in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc/passwd",
        "/latest/../../../etc/passwd",
        "//etc/passwd",
        "/out/passwd",
        "/%00",
    ] {
        let (code, _, body) = get(addr, target);
        assert!(code == 400 || code == 404, "{target}: {code}");
        assert!(!body.contains("root:"), "{target}: {body}");
    }
    let (code, _, _) = get(addr, "/no-such-run/");
    assert_eq!(code, 404);
    // Only GET and HEAD.
    let answer = raw(addr, "DELETE /latest/harness.log");
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    let answer = raw(addr, "HEAD /latest/harness.log");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\n"),
        "a head without a body: {answer}"
    );
}

/// The whole answer to a request line sent as is.
fn raw(addr: SocketAddr, request_line: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{request_line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}
