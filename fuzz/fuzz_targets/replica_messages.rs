//! Sequences of peer messages into one replica of a five-node cluster, as
//! the transport would hand them over: each is a bincode frame from some
//! node, with ticks, drains and storage completions between them. A panic,
//! an overflow or a run that allocates without bound is a finding.
#![no_main]

use gpaxos_node::cstruct::History;
use gpaxos_node::net::framing;
use gpaxos_node::protocol::{Config, Message, Replica};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut replica = Replica::<History>::new(1, Config::new(5).expect("five nodes"));
    let mut written = 0u64;
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 8 {
            0 => replica.tick(),
            1 => replica.start_election(),
            _ => {
                // A length byte, then that many bytes of one frame.
                let Some((&len, tail)) = rest.split_first() else {
                    break;
                };
                let len = (len as usize).min(tail.len());
                let (frame, tail) = tail.split_at(len);
                rest = tail;
                if let Ok(msg) = framing::decode::<Message>(frame) {
                    replica.step(u32::from(op >> 3) % 6, msg);
                }
            }
        }
        let out = replica.drain();
        written += out.writes.len() as u64;
        if op & 0x40 == 0 {
            replica.durable(written);
        }
    }
    assert!(
        replica.held_instances() < 100_000,
        "{} instances held",
        replica.held_instances()
    );
    assert!(
        replica.payloads_held() <= 2 * 32_768,
        "{} commands held",
        replica.payloads_held()
    );
});
