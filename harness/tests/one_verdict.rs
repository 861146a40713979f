//! One verdict per run: `results.json`, `report.html`, `results.edn`,
//! `summary.json` and the exit code all come from one result, checks
//! beyond the history's records included (here the set workload's final
//! read), and `analyze` finds what the run found from its directory alone.
//! No cluster is needed: the run directory is written by hand, as a run
//! would leave it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn analyze(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpaxos-harness"))
        .arg("analyze")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the harness binary runs")
}

/// Two acknowledged adds to the set, and a final read that holds
/// `final_read`.
fn set_history(final_read: &str) -> String {
    [
        r#"{"type":"invoke","process":0,"time":1000,"id":"1.1","f":"append","key":"set","value":"0.1,"}"#.to_owned(),
        r#"{"type":"ok","process":0,"time":2000,"id":"1.1","f":"append","key":"set","value":"0.1,"}"#.to_owned(),
        r#"{"type":"invoke","process":1,"time":3000,"id":"2.1","f":"append","key":"set","value":"1.1,"}"#.to_owned(),
        r#"{"type":"ok","process":1,"time":4000,"id":"2.1","f":"append","key":"set","value":"1.1,"}"#.to_owned(),
        r#"{"type":"nemesis","time":5000,"f":"heal","phase":"final"}"#.to_owned(),
        r#"{"type":"invoke","process":2,"time":6000,"id":"3.1","f":"get","key":"set"}"#.to_owned(),
        format!(
            r#"{{"type":"ok","process":2,"time":7000,"id":"3.1","f":"get","key":"set","result":"{final_read}"}}"#
        ),
    ]
    .join("\n")
        + "\n"
}

/// `store/set-test/<stamp>/` with `history.jsonl` and a `test.json` that
/// says it was a set run, and `store/latest` pointing at it.
fn set_run(name: &str, final_read: &str) -> PathBuf {
    let root =
        std::env::temp_dir().join(format!("gpaxos-one-verdict-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let run = root.join("store/set-test/20250101T000000");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("history.jsonl"), set_history(final_read)).unwrap();
    std::fs::write(
        run.join("test.json"),
        r#"{"name":"set-test","workload":"set"}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink("set-test/20250101T000000", root.join("store/latest")).unwrap();
    root
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_lost_add_is_invalid_everywhere() {
    let root = set_run("lost", "0.1,");
    // No path: analyze takes store/latest.
    let out = analyze(&root, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let run = root.join("store/latest");
    let results: serde_json::Value = serde_json::from_str(&read(run.join("results.json"))).unwrap();
    assert_eq!(results["verdict"], "invalid", "{results:#}");
    let set = &results["files"][0]["checks"][0];
    assert_eq!(set["name"], "set-final-read");
    assert_eq!(set["verdict"], "invalid");
    let summary: serde_json::Value = serde_json::from_str(&read(run.join("summary.json"))).unwrap();
    assert_eq!(summary["verdict"], "invalid", "{summary:#}");
    assert!(
        summary["findings"].to_string().contains("1.1"),
        "{summary:#}"
    );
    let html = read(run.join("report.html"));
    // The first badge is the file's verdict in the table at the top.
    let first = html.find("class=\"badge ").unwrap();
    assert!(
        html[first..].starts_with("class=\"badge invalid\""),
        "{}",
        &html[first..first + 60]
    );
    assert!(html.contains("set-final-read"), "the run check is shown");
    assert!(read(run.join("results.edn")).starts_with("{:valid? false"));
    assert!(read(run.join("history.edn")).contains(":f :append"));
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn a_kept_add_passes_the_set_check() {
    let root = set_run("kept", "0.1,1.1,");
    let out = analyze(&root, &["store/latest"]);
    let run = root.join("store/latest");
    let results: serde_json::Value = serde_json::from_str(&read(run.join("results.json"))).unwrap();
    let set = &results["files"][0]["checks"][0];
    assert_eq!(set["name"], "set-final-read");
    assert_eq!(set["verdict"], "valid", "{results:#}");
    // The exit code is the results' verdict, whatever the other checks
    // make of a history without learner observations.
    let verdict = results["verdict"].as_str().unwrap();
    let code = ["valid", "invalid", "unknown"]
        .iter()
        .position(|v| *v == verdict);
    assert_eq!(out.status.code(), code.map(|c| c as i32), "{out:?}");
    std::fs::remove_dir_all(root).ok();
}
