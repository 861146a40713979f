//! A node refuses a data directory that belongs to another node, or whose
//! write-ahead log vanished after it first ran there (it would come back
//! with no memory of its promises).

use std::process::Command;
use std::time::Duration;

fn node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpaxos-node"))
}

#[test]
fn foreign_or_emptied_data_directories_are_refused() {
    let dir = std::env::temp_dir().join(format!("gpaxos-datadir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tls = dir.join("tls");
    assert!(node()
        .args(["certs", "--nodes", "n1,n2,n3", "--out"])
        .arg(&tls)
        .status()
        .unwrap()
        .success());
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let cluster = format!(
        "n1=127.0.0.1:{},n2=127.0.0.1:{},n3=127.0.0.1:{}",
        ports[0], ports[1], ports[2]
    );
    let data = dir.join("d1");
    let run = |id: &str| {
        let mut c = node();
        c.args(["run", "--id", id, "--cluster", &cluster, "--data"])
            .arg(&data)
            .arg("--tls")
            .arg(&tls);
        c
    };

    let mut first = run("n1").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(data.join("wal.log").exists());

    let out = run("n2").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("belongs to node n1"),
        "{err}"
    );

    std::fs::remove_file(data.join("wal.log")).unwrap();
    let out = run("n1").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is gone"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
