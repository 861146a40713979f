//! `bench --etcd`: five etcd members on loopback, measured by etcd's own
//! `etcdctl check perf`, so that the figures users compare us with come
//! from the same machine in the same invocation (issue 13).
//!
//! `check perf --load=l` runs 500 clients putting values for 60 s against
//! the members and prints its throughput and slowest request; it is what
//! etcd's operators run to judge a cluster, so it is taken as it is rather
//! than reimplemented. The members fsync as etcd always does.

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MEMBERS: usize = 5;

#[derive(Clone, Debug, Serialize)]
pub struct EtcdResult {
    pub version: String,
    /// The `--load` given to `etcdctl check perf`.
    pub load: String,
    pub writes_per_sec: f64,
    pub slowest_ms: f64,
    pub stddev_ms: Option<f64>,
    /// Whether `check perf` judged the cluster fast enough for the load.
    pub passed: bool,
}

/// Whether `etcd` and `etcdctl` are installed; the error says how to get
/// them.
pub fn available() -> Result<()> {
    for (tool, asks) in [("etcd", "--version"), ("etcdctl", "version")] {
        let found = Command::new(tool)
            .arg(asks)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            bail!("bench --etcd needs `{tool}` on the PATH (Debian: apt-get install etcd-server etcd-client)");
        }
    }
    Ok(())
}

/// The members, killed when dropped.
struct Members(Vec<Child>);

impl Drop for Members {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts five members under `dir`, runs `check perf --load=l` against
/// them and stops them.
pub fn run(dir: &Path) -> Result<EtcdResult> {
    available()?;
    std::fs::create_dir_all(dir)?;
    let ports = free_ports(2 * MEMBERS)?;
    let (peer, client) = ports.split_at(MEMBERS);
    let cluster: Vec<String> = (0..MEMBERS)
        .map(|i| format!("e{}=http://127.0.0.1:{}", i + 1, peer[i]))
        .collect();
    let mut members = Members(Vec::new());
    for i in 0..MEMBERS {
        members
            .0
            .push(start_member(dir, i, peer, client, &cluster.join(","))?);
    }
    let endpoints: Vec<String> = client
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let endpoints = endpoints.join(",");
    wait_healthy(&endpoints, Duration::from_secs(30))?;
    println!("etcd      500 clients  (etcdctl check perf --load=l, 60 s) ...");
    let out = etcdctl(&endpoints, &["check", "perf", "--load=l"])?;
    std::fs::write(dir.join("check-perf.txt"), &out)?;
    drop(members);
    let mut result = parse_check_perf(&out)?;
    result.version = version()?;
    Ok(result)
}

fn start_member(
    dir: &Path,
    i: usize,
    peer: &[u16],
    client: &[u16],
    cluster: &str,
) -> Result<Child> {
    let name = format!("e{}", i + 1);
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let peer_url = format!("http://127.0.0.1:{}", peer[i]);
    let client_url = format!("http://127.0.0.1:{}", client[i]);
    Command::new("etcd")
        .args(["--name", &name])
        .arg("--data-dir")
        .arg(dir.join(&name))
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--initial-cluster", cluster])
        .args(["--initial-cluster-state", "new"])
        .args(["--initial-cluster-token", "gpaxos-bench"])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting etcd member {name}"))
}

fn wait_healthy(endpoints: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if etcdctl(endpoints, &["endpoint", "health"]).is_ok() {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("the etcd members were not healthy within {limit:?} (their logs are beside bench.json)");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn etcdctl(endpoints: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(args)
        .output()
        .context("running etcdctl")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // `check perf` exits 1 when it judges the cluster too slow: a figure
    // all the same.
    if !out.status.success() && !text.contains("writes/s") {
        bail!("etcdctl {} failed: {}", args.join(" "), text.trim());
    }
    Ok(text)
}

fn version() -> Result<String> {
    let out = Command::new("etcd").arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .unwrap_or("unknown")
        .trim()
        .to_string())
}

/// Reads the verdict lines of `etcdctl check perf`, e.g.
/// `FAIL: Throughput too low: 2350 writes/s`,
/// `Slowest request took too long: 0.558733s`, `PASS: Stddev is 0.064050s`.
pub fn parse_check_perf(text: &str) -> Result<EtcdResult> {
    let seconds_after = |marker: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.contains(marker))?;
        let word = line.split_whitespace().last()?;
        word.strip_suffix('s')?.parse::<f64>().ok()
    };
    let writes = text
        .lines()
        .find(|l| l.contains("writes/s"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "writes/s")?;
            words.get(at.checked_sub(1)?)?.parse::<f64>().ok()
        })
        .ok_or_else(|| anyhow!("no throughput in etcdctl check perf's output:\n{text}"))?;
    let slowest = seconds_after("Slowest request took")
        .ok_or_else(|| anyhow!("no slowest request in etcdctl check perf's output:\n{text}"))?;
    Ok(EtcdResult {
        version: String::new(),
        load: "l".into(),
        writes_per_sec: writes,
        slowest_ms: slowest * 1000.0,
        stddev_ms: seconds_after("Stddev is").map(|s| s * 1000.0),
        passed: text.trim_end().ends_with("PASS"),
    })
}

fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_verdict_of_check_perf() {
        let text = " 60 / 60 100.00% 1m0s\nFAIL: Throughput too low: 2350 writes/s\n\
                    Slowest request took too long: 0.558733s\nPASS: Stddev is 0.064050s\nFAIL";
        let r = parse_check_perf(text).unwrap();
        assert_eq!(r.writes_per_sec, 2350.0);
        assert!((r.slowest_ms - 558.733).abs() < 1e-6);
        assert!((r.stddev_ms.unwrap() - 64.05).abs() < 1e-6);
        assert!(!r.passed);
        let text = "PASS: Throughput is 8000 writes/s\nPASS: Slowest request took 0.2s\nPASS: Stddev is 0.01s\nPASS";
        let r = parse_check_perf(text).unwrap();
        assert_eq!(r.writes_per_sec, 8000.0);
        assert!(r.passed);
        assert!(parse_check_perf("Error: context deadline exceeded").is_err());
    }
}
