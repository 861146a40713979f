//! A Prometheus text endpoint (`gpaxos-node run --metrics ADDR`): the
//! counters of `status`, as `GET /metrics` over plain HTTP/1.1.
//!
//! The core publishes its status after every tick; requests read the last
//! one, so a scrape never waits for the protocol.

use crate::client::Status;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Binds `addr` and serves the latest status from `status` for as long as
/// the runtime runs.
pub async fn serve(
    addr: SocketAddr,
    status: watch::Receiver<Option<Status>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let mut stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: back off rather than spin.
                    tracing::debug!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let status = status.clone();
            tokio::spawn(async move {
                // Read the request head; its content does not matter
                // beyond the path, and a slow client gets nothing.
                let mut buf = [0u8; 1024];
                let read =
                    tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
                let Ok(Ok(n)) = read else { return };
                let head = String::from_utf8_lossy(&buf[..n]);
                let response = match head.split_whitespace().nth(1) {
                    Some("/metrics") => match status.borrow().as_ref() {
                        Some(s) => http(200, "OK", &render(s)),
                        None => http(503, "Service Unavailable", "starting\n"),
                    },
                    _ => http(404, "Not Found", "try /metrics\n"),
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(local)
}

fn http(code: u16, reason: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The Prometheus text exposition of a node's status.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let node = &s.node;
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP gpaxos_{name} {help}");
        let _ = writeln!(out, "# TYPE gpaxos_{name} {kind}");
        let _ = writeln!(out, "gpaxos_{name}{{node=\"{node}\"}} {value}");
    };
    let st = &s.stats;
    let counters: [(&str, &str, u64); 19] = [
        (
            "learned_fast_total",
            "Client commands learned through fast votes alone.",
            st.learned_fast,
        ),
        (
            "learned_slow_total",
            "Client commands learned through a leader's suggestion.",
            st.learned_slow,
        ),
        (
            "checkpoints_learned_total",
            "Checkpoint commands learned.",
            st.checkpoints_learned,
        ),
        (
            "collisions_total",
            "Fast ballots in which two acceptors voted incompatible c-structs.",
            st.collisions,
        ),
        (
            "recoveries_total",
            "Ballots started to recover from a collision or a stall.",
            st.recoveries,
        ),
        (
            "ballots_started_total",
            "Ballots this node started as leader.",
            st.ballots_started,
        ),
        (
            "elections_total",
            "Elections this node started after silence from the leader.",
            st.elections,
        ),
        (
            "mode_switches_total",
            "Switches between fast and classic ballots.",
            st.mode_switches,
        ),
        (
            "writes_total",
            "Records handed to the write-ahead log.",
            st.writes,
        ),
        ("messages_total", "Protocol messages sent.", st.messages),
        (
            "incompatible_learned_total",
            "Learned values incompatible with what was learned before (a safety violation).",
            st.incompatible_learned,
        ),
        (
            "start_errors_total",
            "Ballot starts where nothing was proved safe.",
            st.start_errors,
        ),
        (
            "snapshots_total",
            "Times the log was replaced by a snapshot.",
            st.snapshots,
        ),
        (
            "syncs_compacted_total",
            "Syncs for instances this node had compacted away.",
            st.syncs_compacted,
        ),
        (
            "snapshots_installed_total",
            "Snapshots received from peers and installed (state transfer).",
            st.snapshots_installed,
        ),
        (
            "snapshots_refused_total",
            "Snapshots received from peers and refused (stale or undecodable).",
            st.snapshots_refused,
        ),
        (
            "peer_messages_refused_total",
            "Messages from peers refused whole (impersonation, ballots or instances out of range).",
            st.refused,
        ),
        (
            "fsyncs_total",
            "fsync calls on the write-ahead log.",
            s.fsyncs,
        ),
        (
            "log_compactions_total",
            "Snapshots put in place of the write-ahead log.",
            s.log_compactions,
        ),
    ];
    for (name, help, v) in counters {
        metric(name, "counter", help, v as f64);
    }
    let learned = st.learned_fast + st.learned_slow;
    let ratio = if learned == 0 {
        0.0
    } else {
        st.learned_fast as f64 / learned as f64
    };
    let gauges: [(&str, &str, f64); 11] = [
        (
            "fast_path_ratio",
            "Share of learned client commands learned through fast votes.",
            ratio,
        ),
        (
            "leader",
            "1 if this node leads a ballot in phase 2.",
            (s.role == "leader") as u8 as f64,
        ),
        (
            "fast_ballot",
            "1 if the node's acceptor is in a fast ballot.",
            s.fast as u8 as f64,
        ),
        (
            "ballot_round",
            "The round of the ballot the node's acceptor is in.",
            s.mbal.round as f64,
        ),
        (
            "closed_below",
            "Every instance below this one is learned closed.",
            s.closed_below as f64,
        ),
        (
            "learned",
            "Commands this node has learned.",
            s.learned as f64,
        ),
        (
            "pending_proposals",
            "Commands proposed here and not yet learned.",
            s.pending as f64,
        ),
        (
            "log_bytes",
            "Size of the write-ahead log file.",
            s.log_bytes as f64,
        ),
        (
            "snapshot_writing",
            "1 while a snapshot is being written beside the log.",
            u8::from(s.snapshot_writing) as f64,
        ),
        (
            "snapshot_bytes",
            "Size of the last snapshot taken or installed.",
            s.snapshot_bytes as f64,
        ),
        (
            "client_sessions",
            "Client sessions the learner keeps.",
            s.sessions as f64,
        ),
    ];
    for (name, help, v) in gauges {
        metric(name, "gauge", help, v);
    }
    metric(
        "max_batch",
        "gauge",
        "Largest batch of proposals voted on at once.",
        st.max_batch as f64,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Ballot, Stats};

    fn status() -> Status {
        Status {
            node: "n2".into(),
            role: "leader".into(),
            mbal: Ballot::ZERO,
            fast: true,
            leader: "n2".into(),
            closed_below: 3,
            learned: 10,
            pending: 1,
            stats: Stats {
                learned_fast: 3,
                learned_slow: 1,
                ..Stats::default()
            },
            fsyncs: 7,
            log_bytes: 4096,
            log_compactions: 0,
            snapshot_writing: false,
            snapshot_bytes: 512,
            sessions: 2,
        }
    }

    #[test]
    fn every_sample_has_help_and_type_and_names_the_node() {
        let text = render(&status());
        assert!(text.contains("gpaxos_fsyncs_total{node=\"n2\"} 7\n"));
        assert!(text.contains("gpaxos_fast_path_ratio{node=\"n2\"} 0.75\n"));
        assert!(text.contains("gpaxos_leader{node=\"n2\"} 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE"
            );
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
        }
    }

    #[tokio::test]
    async fn the_endpoint_serves_the_latest_status_and_refuses_other_paths() {
        let (tx, rx) = watch::channel(None);
        let addr = serve("127.0.0.1:0".parse().unwrap(), rx).await.unwrap();
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).await.unwrap();
            body
        };
        assert!(get("/metrics").await.starts_with("HTTP/1.1 503"));
        tx.send_replace(Some(status()));
        let page = get("/metrics").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("gpaxos_learned{node=\"n2\"} 10"));
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
    }
}
