//! Hand-made histories for every model, valid and invalid, indeterminate
//! operations included.

use super::*;
use crate::history::{jepsen, History};

fn edn(text: &str, model: Option<ModelKind>) -> Result<LinearResult, BuildError> {
    edn_with(text, model, FailReading::NotApplied)
}

fn edn_with(
    text: &str,
    model: Option<ModelKind>,
    fail: FailReading,
) -> Result<LinearResult, BuildError> {
    let events = jepsen::parse_edn("t.edn", text).unwrap();
    Ok(check(
        &from_jepsen_with("t.edn", &events, model, fail)?,
        &Options::default(),
    ))
}

fn jsonl(lines: &[&str]) -> LinearResult {
    let h = History::from_jsonl_str(&lines.join("\n")).unwrap();
    check(
        &from_history("t.jsonl", &h, None).unwrap(),
        &Options::default(),
    )
}

fn ev(process: u32, kind: &str, f: &str, value: &str) -> String {
    format!("{{:process {process}, :type :{kind}, :f :{f}, :value {value}}}\n")
}

#[test]
fn register_valid_and_invalid() {
    let ok = [
        ev(0, "invoke", "write", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(0, "ok", "write", "1"),
        ev(1, "ok", "read", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "1"),
    ]
    .concat();
    assert_eq!(
        edn(&ok, Some(ModelKind::Register)).unwrap().verdict,
        Verdict::Valid
    );
    let stale = [
        ev(0, "invoke", "write", "1"),
        ev(0, "ok", "write", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "nil"),
    ]
    .concat();
    let r = edn(&stale, Some(ModelKind::Register)).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    let f = &r.failures[0];
    assert_eq!(f.linearized, 1);
    assert_eq!(f.window.len(), 1);
    assert!(
        f.window[0]
            .reason
            .contains("read absent but the value was \"1\""),
        "{:?}",
        f.window
    );
}

#[test]
fn indeterminate_writes_may_or_may_not_happen() {
    let took = [
        ev(0, "invoke", "write", "1"),
        ev(0, "info", "write", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "1"),
    ]
    .concat();
    assert_eq!(edn(&took, None).unwrap().verdict, Verdict::Valid);
    let never = [
        ev(0, "invoke", "write", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "nil"),
    ]
    .concat();
    assert_eq!(edn(&never, None).unwrap().verdict, Verdict::Valid);
    // Once seen, it cannot be unseen.
    let flicker = [
        ev(0, "invoke", "write", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "nil"),
    ]
    .concat();
    assert_eq!(edn(&flicker, None).unwrap().verdict, Verdict::Invalid);
}

#[test]
fn a_jepsen_fail_did_not_happen_unless_asked_to_read_it_as_porcupine() {
    let cas = FailReading::CasRefused;
    let ok = [
        ev(0, "invoke", "write", "1"),
        ev(0, "ok", "write", "1"),
        ev(0, "invoke", "cas", "[2 3]"),
        ev(0, "fail", "cas", "[2 3]"),
        ev(0, "invoke", "cas", "[1 3]"),
        ev(0, "ok", "cas", "[1 3]"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "3"),
    ]
    .concat();
    let model = Some(ModelKind::CasRegister);
    assert_eq!(edn(&ok, model).unwrap().verdict, Verdict::Valid);
    assert_eq!(edn_with(&ok, model, cas).unwrap().verdict, Verdict::Valid);
    // A cas that failed while the value certainly was its `from`: in
    // Jepsen's reading it failed for some other reason (a rollback, a
    // timeout the client mapped to :fail) and did not happen...
    let rolled_back = [
        ev(0, "invoke", "write", "1"),
        ev(0, "ok", "write", "1"),
        ev(0, "invoke", "cas", "[1 3]"),
        ev(0, "fail", "cas", "[1 3]"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "1"),
    ]
    .concat();
    let r = edn(&rolled_back, model).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.failures);
    assert_eq!(r.operations, 2, "the failed cas is left out");
    // ...and in Porcupine's it saw another value, which nothing wrote.
    let r = edn_with(&rolled_back, model, cas).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.failures[0].window[0].reason.contains("it failed"),
        "{:?}",
        r.failures[0]
    );
    // A failed write left out: the read of its value has no writer.
    let failed_write = [
        ev(0, "invoke", "write", "1"),
        ev(0, "fail", "write", "1"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "1"),
    ]
    .concat();
    for reading in [FailReading::NotApplied, cas] {
        let r = edn_with(&failed_write, None, reading).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid, "{reading:?}");
    }
    // A timed-out cas may have swapped.
    let maybe = [
        ev(0, "invoke", "write", "1"),
        ev(0, "ok", "write", "1"),
        ev(0, "invoke", "cas", "[1 3]"),
        ev(0, "info", "cas", ":timed-out"),
        ev(1, "invoke", "read", "nil"),
        ev(1, "ok", "read", "3"),
    ]
    .concat();
    assert_eq!(edn(&maybe, None).unwrap().verdict, Verdict::Valid);
    // The register model has no cas.
    let e = edn(&ok, Some(ModelKind::Register)).unwrap_err();
    assert!(
        e.to_string()
            .contains("not an operation of the register model"),
        "{e}"
    );
}

#[test]
fn a_project_cas_fail_is_a_refusal_that_took_effect() {
    let op = |kind: &str, p: u32, t: u64, id: &str, body: &str| {
        format!(r#"{{"type":"{kind}","process":{p},"time":{t},"id":"{id}",{body}}}"#)
    };
    let put = r#""f":"put","key":"k","value":"1""#;
    let cas = r#""f":"cas","key":"k","from":"1","to":"3""#;
    let lines = [
        op("invoke", 0, 1, "0.1", put),
        op("ok", 0, 2, "0.1", put),
        op("invoke", 0, 3, "0.2", cas),
        op("fail", 0, 4, "0.2", cas),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    // The value was certainly "1", so the comparison cannot have failed.
    let r = jsonl(&refs);
    assert_eq!(r.verdict, Verdict::Invalid, "{:?}", r.failures);
    let lines = [
        op("invoke", 0, 1, "0.1", put),
        op("ok", 0, 2, "0.1", put),
        op("invoke", 0, 3, "0.2", &cas.replace("\"1\"", "\"2\"")),
        op("fail", 0, 4, "0.2", &cas.replace("\"1\"", "\"2\"")),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(jsonl(&refs).verdict, Verdict::Valid);
}

#[test]
fn kv_keys_are_independent() {
    let kv = |p: u32, kind: &str, f: &str, key: &str, value: &str| {
        format!("{{:process {p}, :type :{kind}, :f :{f}, :key \"{key}\", :value {value}}}\n")
    };
    let ok = [
        kv(0, "invoke", "append", "a", "\"x\""),
        kv(1, "invoke", "append", "b", "\"y\""),
        kv(0, "ok", "append", "a", "\"x\""),
        kv(1, "ok", "append", "b", "\"y\""),
        kv(0, "invoke", "get", "b", "nil"),
        kv(0, "ok", "get", "b", "\"y\""),
        kv(1, "invoke", "append", "a", "\"z\""),
        kv(1, "info", "append", "a", "\"z\""),
        kv(0, "invoke", "get", "a", "nil"),
        kv(0, "ok", "get", "a", "\"xz\""),
        kv(0, "invoke", "get", "c", "nil"),
        kv(0, "ok", "get", "c", "\"\""),
    ]
    .concat();
    let r = edn(&ok, Some(ModelKind::Kv)).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.failures);
    assert_eq!(r.objects, 3);
    let bad = ok.replace("\"xz\"", "\"zx\"");
    let r = edn(&bad, Some(ModelKind::Kv)).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.failures[0].object, "a");
}

const INIT: &str = r#"{"type":"init","accounts":{"a":10,"b":0,"c":5,"d":5}}"#;

fn bank_op(kind: &str, p: u32, t: u64, id: &str, body: &str) -> String {
    format!(r#"{{"type":"{kind}","process":{p},"time":{t},"id":"{id}",{body}}}"#)
}

#[test]
fn bank_transfers_and_reads() {
    let t1 = r#""f":"transfer","from":"a","to":"b","amount":10"#;
    let t2 = r#""f":"transfer","from":"a","to":"b","amount":1"#;
    let t3 = r#""f":"transfer","from":"c","to":"d","amount":5"#;
    let read = |a: i64, b: i64| {
        format!(r#""f":"balances","accounts":["a","b"],"result":{{"a":{a},"b":{b}}}"#)
    };
    let lines = [
        INIT.to_owned(),
        bank_op("invoke", 1, 1, "1.1", t1),
        bank_op("invoke", 2, 2, "2.1", t2),
        bank_op("ok", 1, 3, "1.1", t1),
        bank_op("fail", 2, 4, "2.1", t2),
        bank_op("invoke", 3, 5, "3.1", &read(0, 10)),
        bank_op("ok", 3, 6, "3.1", &read(0, 10)),
        bank_op("invoke", 4, 7, "4.1", t3),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let r = jsonl(&refs);
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.failures);
    assert_eq!(r.objects, 2, "a,b and c,d are independent");

    // The refused transfer must have come after the first: if it had come
    // first, a could afford it. Both orders are possible here, so make the
    // refused one finish before the first began.
    let mut bad = lines.clone();
    bad[2] = bank_op("invoke", 2, 0, "2.1", t2);
    bad[4] = bank_op("fail", 2, 0, "2.1", t2);
    let refs: Vec<&str> = bad.iter().map(String::as_str).collect();
    let r = jsonl(&refs);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.failures[0].message.contains("accounts a,b"),
        "{}",
        r.failures[0].message
    );

    // A read of money that no order of the transfers produces.
    let mut bad = lines.clone();
    bad[5] = bank_op("invoke", 3, 5, "3.1", &read(5, 5));
    bad[6] = bank_op("ok", 3, 6, "3.1", &read(5, 5));
    let refs: Vec<&str> = bad.iter().map(String::as_str).collect();
    assert_eq!(jsonl(&refs).verdict, Verdict::Invalid);
}

#[test]
fn exhausted_budgets_are_unknown() {
    // Eight concurrent writes and eight concurrent reads of their values,
    // then a read of a value no one wrote: every interleaving must be tried
    // before the answer is no, far more than the steps between looks at
    // the clock.
    let mut text = String::new();
    for p in 0..8 {
        text.push_str(&ev(p, "invoke", "write", &p.to_string()));
        text.push_str(&ev(p + 100, "invoke", "read", "nil"));
    }
    for p in 0..8 {
        text.push_str(&ev(p, "ok", "write", &p.to_string()));
        text.push_str(&ev(p + 100, "ok", "read", &p.to_string()));
    }
    text.push_str(&ev(200, "invoke", "read", "nil"));
    text.push_str(&ev(200, "ok", "read", "99"));
    let events = jepsen::parse_edn("t.edn", &text).unwrap();
    let h = from_jepsen("t.edn", &events, None).unwrap();
    assert_eq!(check(&h, &Options::default()).verdict, Verdict::Invalid);
    let out_of_time = Options {
        time_limit: Some(Duration::ZERO),
        ..Options::default()
    };
    let r = check(&h, &out_of_time);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.unknown.len(), 1);
    assert!(
        r.unknown[0].starts_with("register: out of time after "),
        "{:?}",
        r.unknown
    );
    let out_of_memory = Options {
        memory_limit: Some(0),
        ..Options::default()
    };
    let r = check(&h, &out_of_memory);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.unknown.len(), 1);
    assert!(
        r.unknown[0].starts_with("register: out of memory (budget 0 B"),
        "{:?}",
        r.unknown
    );
}

/// Twelve concurrent writes of "x", "xx", ... and twelve concurrent
/// appends of "x", then a read of a value none of them makes, but which
/// every value they make starts with: no early detection applies, and the
/// search must refute every subset of the 24 operations (2^24
/// configurations, the memo growing with each).
fn blow_up() -> LinearHistory {
    let kv = |p: u32, kind: &str, f: &str, value: &str| {
        format!("{{:process {p}, :type :{kind}, :f :{f}, :key \"k\", :value {value}}}\n")
    };
    let mut text = String::new();
    for kind in ["invoke", "ok"] {
        for p in 0..12 {
            let xs = "x".repeat(p as usize + 1);
            text.push_str(&kv(p, kind, "put", &format!("\"{xs}\"")));
            text.push_str(&kv(p + 100, kind, "append", "\"x\""));
        }
    }
    text.push_str(&kv(200, "invoke", "get", "nil"));
    text.push_str(&kv(200, "ok", "get", &format!("\"{}y\"", "x".repeat(40))));
    let events = jepsen::parse_edn("t.edn", &text).unwrap();
    from_jepsen("t.edn", &events, None).unwrap()
}

#[test]
fn a_search_built_to_blow_up_stops_within_its_memory_budget() {
    use std::sync::atomic::AtomicUsize;
    let h = blow_up();
    let limit = 16 << 20;
    let options = Options {
        memory_limit: Some(limit),
        time_limit: Some(Duration::from_secs(60)),
        threads: 1,
    };
    let started = Instant::now();
    let r = check(&h, &options);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(
        r.unknown[0].starts_with("k: out of memory (budget 16.0 MiB for the whole history) after "),
        "{:?}",
        r.unknown
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // What the search held when it stopped, and what it holds without the
    // memory budget after a second.
    let held = |memory: Option<usize>, deadline: Option<Instant>| {
        let used = AtomicUsize::new(0);
        let budget = budget::Budget {
            deadline,
            memory,
            used: &used,
        };
        let p = &h.partitions[0];
        match search::search(&mut model::ValueModel::new(&h.values), &p.ops, &budget) {
            search::Outcome::Exhausted(stopped) => stopped,
            _ => panic!("the search cannot end"),
        }
    };
    let stopped = held(Some(limit), None);
    assert_eq!(stopped.budget, budget::Exhausted::Memory);
    assert!(stopped.bytes <= limit, "{stopped:?}");
    assert!(stopped.bytes > limit / 2, "{stopped:?}");
    let unbounded = held(None, Some(Instant::now() + Duration::from_secs(1)));
    assert_eq!(unbounded.budget, budget::Exhausted::Time);
    assert!(unbounded.bytes > limit, "{unbounded:?}");
}

#[test]
fn a_time_budget_stops_the_search_within_a_second() {
    let h = blow_up();
    for limit in [Duration::ZERO, Duration::from_millis(300)] {
        let started = Instant::now();
        let r = check(
            &h,
            &Options {
                time_limit: Some(limit),
                ..Options::default()
            },
        );
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(
            r.unknown[0].starts_with("k: out of time after "),
            "{:?}",
            r.unknown
        );
        assert!(started.elapsed() < limit + Duration::from_secs(1));
    }
}
