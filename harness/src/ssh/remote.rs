//! One host reached with the OpenSSH client: scripts run in one long-lived
//! `sh` per host ([`Session`]), files are copied with `scp`. Every call is
//! non-interactive (`BatchMode`: a missing key fails at once instead of
//! asking for a password) and bounded in time, and every connection to a
//! host shares one (`ControlMaster`).
//!
//! Why a session rather than `ssh host script` per call: a new session
//! costs a login shell, and a login shell reads the user's rc files
//! (Debian's bash does even for `bash -c` under sshd); measured here, 0.3 s
//! a call, which the nemesis's kills and the runner's once-a-second
//! liveness check would pay again and again. Through the session a
//! script costs a round trip.
//!
//! Host keys are not checked (`StrictHostKeyChecking=no` with an empty
//! known-hosts file): the harness drives test hosts made for the run, as
//! Jepsen does by default.

use crate::cluster::shell::{self, quote};
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the harness logs in to the hosts and where it keeps its files.
#[derive(Clone, Debug, Serialize)]
pub struct SshOptions {
    pub user: String,
    /// The private key; the client's defaults (and agent) when absent.
    pub key: Option<PathBuf>,
    pub port: u16,
    /// Where each node's directory goes on its host.
    pub remote_dir: String,
}

/// One host.
pub struct Remote {
    pub host: String,
    opts: SshOptions,
    /// Holds the control socket shared by every call to this host; short,
    /// as a socket path must be.
    control: PathBuf,
    /// The shell scripts run in; opened on first use, again after a break.
    session: Mutex<Option<Session>>,
}

impl Remote {
    /// `control_dir` holds the connection-sharing sockets (one per host).
    pub fn new(host: &str, opts: &SshOptions, control_dir: &Path) -> Remote {
        Remote {
            host: host.to_owned(),
            opts: opts.clone(),
            control: control_dir.join("%C"),
            session: Mutex::new(None),
        }
    }

    fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = [
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "LogLevel=ERROR",
            "ConnectTimeout=5",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "ControlMaster=auto",
            "ControlPersist=300",
        ]
        .iter()
        .flat_map(|w| ["-o".to_owned(), (*w).to_owned()])
        .collect();
        o.extend([
            "-o".into(),
            format!("ControlPath={}", self.control.display()),
        ]);
        if let Some(k) = &self.opts.key {
            o.extend(["-i".into(), k.display().to_string()]);
        }
        o
    }

    /// `user@host` as ssh wants it.
    pub fn login(&self) -> String {
        format!("{}@{}", self.opts.user, self.host)
    }

    /// `user@host:path` as scp wants it (an IPv6 host in brackets).
    fn scp_target(&self, path: &str) -> String {
        if self.host.contains(':') {
            format!("{}@[{}]:{path}", self.opts.user, self.host)
        } else {
            format!("{}@{}:{path}", self.opts.user, self.host)
        }
    }

    /// Runs `script` with `sh` on the host, in the host's session; its
    /// output (stdout and stderr), or an error with it if it fails.
    pub fn sh(&self, script: &str, secs: u64) -> Result<String> {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let session = guard.as_mut().expect("opened");
        match session.call(script, Duration::from_secs(secs)) {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(failed)) => Err(failed.context(format!("on {}", self.host))),
            Err(broken) => {
                // The next call opens a new session.
                *guard = None;
                Err(broken.context(format!("on {} over ssh", self.host)))
            }
        }
    }

    fn open(&self) -> Result<Session> {
        let mut args = self.options();
        args.extend([
            "-p".into(),
            self.opts.port.to_string(),
            self.login(),
            "sh".into(),
        ]);
        let mut child = Command::new("ssh")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running ssh (is the OpenSSH client installed?)")?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                if tx.send(text.trim_end_matches('\n').to_owned()).is_err() {
                    return;
                }
                line.clear();
            }
        });
        let errors = Arc::new(Mutex::new(String::new()));
        let sink = errors.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let mut e = sink.lock().unwrap_or_else(|e| e.into_inner());
                e.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Session {
            child,
            stdin,
            lines,
            errors,
            calls: 0,
        })
    }

    fn scp(&self, from: &str, to: &str, secs: u64) -> Result<()> {
        let mut args = vec!["-q".to_owned(), "-r".to_owned(), "-p".to_owned()];
        args.extend(self.options());
        args.extend([
            "-P".into(),
            self.opts.port.to_string(),
            from.into(),
            to.into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        shell::run("scp", &args, secs)
            .map(|_| ())
            .with_context(|| format!("scp {from} -> {to}"))
    }

    /// Copies `local` (a file or directory) to `path` on the host.
    pub fn put(&self, local: &Path, path: &str, secs: u64) -> Result<()> {
        self.scp(&local.display().to_string(), &self.scp_target(path), secs)
    }

    /// Copies `path` (a file or directory) from the host to `local`.
    pub fn get(&self, path: &str, local: &Path, secs: u64) -> Result<()> {
        self.scp(&self.scp_target(path), &local.display().to_string(), secs)
    }

    /// Ends the session and the shared connection, if open.
    pub fn close(&self) {
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut args = self.options();
        args.extend([
            "-p".into(),
            self.opts.port.to_string(),
            "-O".into(),
            "exit".into(),
        ]);
        args.push(self.login());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = shell::run("ssh", &args, 10);
    }
}

/// A fresh directory for the control sockets: under /tmp, as a socket's
/// path must fit in about 100 bytes.
pub fn control_dir() -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(format!(
        "/tmp/gpx-ssh-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A `sh` on the host reading commands from our pipe. Each call runs its
/// script in a child `sh -c` (so its `exit` and `set -e` end only it, and
/// it reads no commands meant for the session), then prints a marker line
/// with the exit status.
struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// What ssh said on stderr: why a connection failed.
    errors: Arc<Mutex<String>>,
    calls: u64,
}

impl Session {
    /// The script's output, or its failure (outer `Ok`); an outer `Err`
    /// means the session is broken (closed or timed out).
    fn call(&mut self, script: &str, limit: Duration) -> Result<Result<String>> {
        self.calls += 1;
        let marker = format!("__gpaxos_done_{}__", self.calls);
        let command = format!(
            "sh -c {} </dev/null 2>&1; printf '\\n%s %s\\n' {marker} \"$?\"\n",
            quote(script)
        );
        if let Err(e) = self
            .stdin
            .write_all(command.as_bytes())
            .and_then(|()| self.stdin.flush())
        {
            return Err(self.broken(&format!("writing to ssh: {e}")));
        }
        let deadline = Instant::now() + limit;
        let mut out: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(status) = line.strip_prefix(&marker) {
                        // The output, less the newline the marker's printf
                        // put before it.
                        let text = out.join("\n");
                        return Ok(match status.trim() {
                            "0" => Ok(text),
                            code => Err(anyhow!("a script failed (exit {code}): {}", text.trim())),
                        });
                    }
                    out.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(
                        self.broken(&format!("a script timed out after {} s", limit.as_secs()))
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Give ssh's last words a moment to arrive.
                    let _ = self.child.wait();
                    return Err(self.broken("the connection closed"));
                }
            }
        }
    }

    fn broken(&mut self, what: &str) -> anyhow::Error {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(20));
        let said = self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .trim()
            .to_owned();
        if said.is_empty() {
            anyhow!("{what}")
        } else {
            anyhow!("{what}: {said}")
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session over `sh` itself (no ssh): the marker protocol.
    fn local() -> Session {
        let mut child = Command::new("sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Session {
            child,
            stdin,
            lines,
            errors: Arc::default(),
            calls: 0,
        }
    }

    #[test]
    fn output_status_and_exit_stay_within_one_call() {
        let mut s = local();
        let t = Duration::from_secs(10);
        assert_eq!(s.call("echo a; echo b", t).unwrap().unwrap(), "a\nb\n");
        assert_eq!(s.call("printf x", t).unwrap().unwrap(), "x");
        assert_eq!(s.call("true", t).unwrap().unwrap(), "");
        let e = s
            .call("set -e; echo why >&2; false; echo not", t)
            .unwrap()
            .unwrap_err();
        assert!(
            format!("{e}").contains("why") && !format!("{e}").contains("not"),
            "{e}"
        );
        // `exit` ended only its script; quotes survive.
        assert_eq!(s.call("exit 0", t).unwrap().unwrap(), "");
        assert_eq!(s.call("echo \"it's\"", t).unwrap().unwrap(), "it's\n");
        assert!(
            s.call("sleep 5", Duration::from_millis(200)).is_err(),
            "a timeout breaks it"
        );
    }
}
