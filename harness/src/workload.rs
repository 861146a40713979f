//! Operation generators: `kv` (registers per key: get, put, cas), `bank`
//! (transfers and reads of every balance; the total is conserved) and `set`
//! (unique adds; a final read must hold every acknowledged add).

use gpaxos_node::{Command, Op};
use rand::rngs::SmallRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

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
        let key = if shared {
            "shared".to_owned()
        } else {
            format!("c{client}")
        };
        let value = format!("{client}-{seq}");
        let op = match rng.gen_range(0..10) {
            0..=3 => Op::Get { key },
            4..=7 => Op::Put { key, value },
            8 => Op::Append { key, value },
            _ => Op::Cas {
                key,
                from: None,
                to: value,
            },
        };
        Command::new(client, seq, op)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    Kv,
    Bank,
    Set,
}

/// The bank's accounts and their opening balance.
pub const ACCOUNTS: [&str; 5] = ["a0", "a1", "a2", "a3", "a4"];
pub const OPENING_BALANCE: i64 = 100;

/// Generates one process's operations.
#[derive(Clone, Debug)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub conflict: f64,
    /// kv keys are drawn from this many per-process keys plus `shared-0..`.
    pub keys: usize,
    /// Put before every kv key: empty on a cluster the run started, the
    /// run's own prefix on one that may hold earlier runs' keys.
    pub namespace: String,
}

impl Workload {
    /// The next operation of `process` (whose last read of a key, for cas,
    /// is `last`).
    pub fn next(&self, process: u64, seq: u64, last: Option<&str>, rng: &mut SmallRng) -> Op {
        match self.kind {
            WorkloadKind::Kv => {
                let key = if rng.gen_bool(self.conflict.clamp(0.0, 1.0)) {
                    format!(
                        "{}shared-{}",
                        self.namespace,
                        rng.gen_range(0..self.keys.max(1))
                    )
                } else {
                    format!("{}p{process}", self.namespace)
                };
                match rng.gen_range(0..10) {
                    0..=3 => Op::Get { key },
                    4..=7 => Op::Put {
                        key,
                        value: format!("{process}-{seq}"),
                    },
                    _ => Op::Cas {
                        key,
                        from: last.map(str::to_owned),
                        to: format!("{process}-{seq}"),
                    },
                }
            }
            WorkloadKind::Bank => {
                if rng.gen_bool(0.25) {
                    Op::Balances {
                        accounts: ACCOUNTS.iter().map(|s| (*s).to_owned()).collect(),
                    }
                } else {
                    let from = rng.gen_range(0..ACCOUNTS.len());
                    let to = (from + rng.gen_range(1..ACCOUNTS.len())) % ACCOUNTS.len();
                    Op::Transfer {
                        from: ACCOUNTS[from].to_owned(),
                        to: ACCOUNTS[to].to_owned(),
                        amount: rng.gen_range(1..=5),
                    }
                }
            }
            WorkloadKind::Set => Op::Append {
                key: "set".into(),
                value: format!("{process}.{seq},"),
            },
        }
    }

    /// The reads made after the final heal.
    pub fn final_reads(&self, keys_touched: &[String]) -> Vec<Op> {
        match self.kind {
            WorkloadKind::Kv => keys_touched
                .iter()
                .map(|k| Op::Get { key: k.clone() })
                .collect(),
            WorkloadKind::Bank => {
                vec![Op::Balances {
                    accounts: ACCOUNTS.iter().map(|s| (*s).to_owned()).collect(),
                }]
            }
            WorkloadKind::Set => vec![Op::Get { key: "set".into() }],
        }
    }
}
