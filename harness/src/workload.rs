//! Operation generators.

use gpaxos_node::{Command, Op};
use rand::rngs::SmallRng;
use rand::Rng;

/// A kv workload whose `conflict` is the probability that an operation
/// touches the one key every client shares; otherwise it touches a key only
/// its own client uses, so it commutes with every concurrent operation.
#[derive(Clone, Debug)]
pub struct KvWorkload {
    pub conflict: f64,
}

impl KvWorkload {
    pub fn next(&self, client: u64, seq: u64, rng: &mut SmallRng) -> Command {
        let shared = self.conflict > 0.0 && rng.gen_bool(self.conflict.min(1.0));
        let key = if shared { "shared".to_owned() } else { format!("c{client}") };
        let value = format!("{client}-{seq}");
        let op = match rng.gen_range(0..10) {
            0..=3 => Op::Get { key },
            4..=7 => Op::Put { key, value },
            8 => Op::Append { key, value },
            _ => Op::Cas { key, from: None, to: value },
        };
        Command::new(client, seq, op)
    }
}
