//! The nemesis's fault kinds, as `--nemesis` names them. The local,
//! docker and ssh backends inject all of them; the simulator's nemesis
//! records its partitions and kills under the same names (it adds power
//! loss and forced elections, which only it can inject).

use anyhow::Result;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Partition,
    Kill,
    Pause,
    Loss,
    Delay,
    Duplicate,
    Reorder,
    TornWal,
    /// The lagging-node nemesis: one node is killed and kept down while
    /// the others go on, compact their logs past it and are restarted one
    /// by one (one each interval); then it comes back and must catch up by
    /// state transfer.
    Lag,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Partition,
        Kind::Kill,
        Kind::Pause,
        Kind::Loss,
        Kind::Delay,
        Kind::Duplicate,
        Kind::Reorder,
        Kind::TornWal,
        Kind::Lag,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Partition => "partition",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Loss => "loss",
            Kind::Delay => "delay",
            Kind::Duplicate => "duplicate",
            Kind::Reorder => "reorder",
            Kind::TornWal => "torn-wal",
            Kind::Lag => "lag",
        }
    }

    /// Parses `partition,kill,...`, `all` or `none`.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>> {
        match s.trim() {
            "none" | "" => return Ok(Vec::new()),
            "all" => return Ok(Kind::ALL.to_vec()),
            _ => {}
        }
        s.split(',')
            .map(|w| {
                let w = w.trim();
                Kind::ALL
                    .into_iter()
                    .find(|k| k.name() == w)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                        anyhow::anyhow!(
                            "unknown nemesis {w:?}; expected all, none or some of {}",
                            names.join(",")
                        )
                    })
            })
            .collect()
    }
}
