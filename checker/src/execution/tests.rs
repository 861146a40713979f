//! Hand-made runs for the execution check.

use super::*;

fn run(lines: &[&str]) -> ExecutionResult {
    check(&History::from_jsonl_str(&lines.join("\n")).unwrap())
}

const PUT1: &str = r#"{"id":"1.1","f":"put","key":"x","value":"1"}"#;
const CAS: &str = r#"{"id":"2.1","f":"cas","key":"x","from":"1","to":"2"}"#;
const CAS_ABSENT: &str = r#"{"id":"2.2","f":"cas","key":"x","from":null,"to":"9"}"#;
const APPEND: &str = r#"{"id":"3.1","f":"append","key":"x","value":"a"}"#;
const GET: &str = r#"{"id":"4.1","f":"get","key":"x"}"#;

fn client(kind: &str, process: u64, time: u64, cmd: &str, extra: &str) -> String {
    let body = &cmd[1..cmd.len() - 1];
    format!(r#"{{"type":"{kind}","process":{process},"time":{time},{body}{extra}}}"#)
}

fn learned(node: &str, time: u64, from: usize, cmds: &[&str], is_final: bool) -> String {
    format!(
        r#"{{"type":"learned","node":"{node}","time":{time},"from":{from},"len":{},"cmds":[{}],"final":{is_final}}}"#,
        from + cmds.len(),
        cmds.join(",")
    )
}

fn kv_run(get_result: &str) -> Vec<String> {
    vec![
        client("invoke", 1, 1, PUT1, ""),
        client("ok", 1, 2, PUT1, ""),
        client("invoke", 2, 3, CAS, ""),
        client("ok", 2, 4, CAS, ""),
        client("invoke", 2, 5, CAS_ABSENT, ""),
        client("fail", 2, 6, CAS_ABSENT, ""),
        client("invoke", 3, 7, APPEND, ""),
        client("info", 3, 8, APPEND, ""),
        client("invoke", 4, 9, GET, ""),
        client("ok", 4, 10, GET, &format!(r#","result":{get_result}"#)),
        learned("n1", 20, 0, &[PUT1, CAS, CAS_ABSENT], false),
        learned("n1", 21, 3, &[APPEND, GET], true),
        learned("n2", 22, 0, &[PUT1], true),
    ]
}

fn lines(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn matching_results_are_valid() {
    let r = run(&lines(&kv_run(r#""2a""#)));
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
    assert_eq!(r.learner.as_deref(), Some("n1"));
    assert_eq!(r.replayed, 5);
    assert_eq!(r.compared, 4);
}

#[test]
fn a_wrong_read_is_the_first_mismatch() {
    let r = run(&lines(&kv_run(r#""2""#)));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.mismatch_count, 1);
    let m = &r.mismatches[0];
    assert_eq!(m.id, CmdId("4.1".into()));
    assert_eq!(m.position, Some(4));
    assert_eq!(m.client_saw, "read \"2\"");
    assert_eq!(m.replayed, "read \"2a\"");
}

#[test]
fn an_info_operation_may_be_absent() {
    let mut v = kv_run(r#""2""#);
    v[11] = learned("n1", 21, 3, &[GET], true);
    let r = run(&lines(&v));
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
}

#[test]
fn a_completed_operation_missing_from_the_final_sequence_is_invalid() {
    let mut v = kv_run(r#""2a""#);
    v[10] = learned("n1", 20, 0, &[PUT1, CAS], false);
    v[11] = learned("n1", 21, 2, &[APPEND, GET], true);
    let r = run(&lines(&v));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.mismatches[0].id, CmdId("2.2".into()));
    assert_eq!(r.mismatches[0].position, None);
    assert!(
        r.mismatches[0].message.contains("not in n1's final"),
        "{}",
        r.mismatches[0].message
    );
}

#[test]
fn without_a_final_observation_a_missing_operation_is_unknown() {
    let v = [
        client("invoke", 1, 1, PUT1, ""),
        client("ok", 1, 2, PUT1, ""),
        learned("n1", 20, 0, &[], false),
    ];
    let r = run(&lines(&v));
    assert_eq!(r.verdict, Verdict::Unknown, "{r:#?}");
}

#[test]
fn a_failed_put_must_not_take_effect() {
    let v = [
        client("invoke", 1, 1, PUT1, ""),
        client("fail", 1, 2, PUT1, ""),
        learned("n1", 20, 0, &[PUT1], true),
    ];
    let r = run(&lines(&v));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.mismatches[0].message.contains("told"),
        "{}",
        r.mismatches[0].message
    );
}

#[test]
fn no_observations_is_not_judged() {
    let r = run(&[&client("invoke", 1, 1, PUT1, "")]);
    assert!(!r.judged);
    assert_eq!(r.verdict, Verdict::Unknown);
}

const T1: &str = r#"{"id":"1.1","f":"transfer","from":"a","to":"b","amount":70}"#;
const T2: &str = r#"{"id":"2.1","f":"transfer","from":"a","to":"b","amount":70}"#;
const BAL: &str = r#"{"id":"3.1","f":"balances","accounts":["a","b"]}"#;
const CKPT: &str = r#"{"id":"n1.7","f":"checkpoint"}"#;

fn bank_run(t2_kind: &str, balances: &str, seq: &[&str]) -> ExecutionResult {
    let v = [
        r#"{"type":"init","accounts":{"a":100,"b":0}}"#.to_owned(),
        client("invoke", 1, 1, T1, ""),
        client("ok", 1, 2, T1, ""),
        client("invoke", 2, 3, T2, ""),
        client(t2_kind, 2, 4, T2, ""),
        client("invoke", 3, 5, BAL, ""),
        client("ok", 3, 6, BAL, &format!(r#","result":{balances}"#)),
        learned("n1", 20, 0, seq, true),
    ];
    run(&lines(&v))
}

#[test]
fn transfers_that_cannot_be_afforded_fail() {
    let r = bank_run("fail", r#"{"a":30,"b":70}"#, &[T1, CKPT, T2, BAL]);
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
    let r = bank_run("ok", r#"{"a":30,"b":70}"#, &[T1, T2, BAL]);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.mismatches[0].client_saw, "moved the money");
}

#[test]
fn balances_are_compared_account_by_account() {
    let r = bank_run("fail", r#"{"a":100,"b":0}"#, &[T1, T2, BAL]);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.mismatches[0].replayed, "balances {a=30, b=70}");
    // Read before the transfers in the learned order: then it is right.
    let r = bank_run("fail", r#"{"a":100,"b":0}"#, &[BAL, T1, T2]);
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
}

#[test]
fn a_repeated_command_executes_once() {
    // Executed twice, the repeat of T1 would take a to 30 - 70 < 0 (refused)
    // or, worse, make T2 look affordable; only the first counts.
    let r = bank_run("fail", r#"{"a":30,"b":70}"#, &[T1, T1, T2, BAL]);
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
}

#[test]
fn an_ok_without_its_result_is_not_compared() {
    let v = [
        client("invoke", 1, 1, PUT1, ""),
        client("ok", 1, 2, PUT1, ""),
        client("invoke", 4, 9, GET, ""),
        client("ok", 4, 10, GET, ""),
        learned("n1", 20, 0, &[PUT1, GET], true),
    ];
    let r = run(&lines(&v));
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
}
