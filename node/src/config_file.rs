//! The optional TOML configuration of `gpaxos-node run --config FILE`.

use crate::protocol::{Config, Quorums};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// Protocol tuning. Every field is optional; the defaults are those of
/// [`Config::new`] with a 10 ms tick.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Use fast ballots (Section 6.1). `false` runs classic ballots only.
    pub fast: Option<bool>,
    /// `history` (Generalized Paxos) or `sequence` (every command
    /// interferes: the Multi-Paxos baseline).
    pub cstruct: Option<String>,
    pub classic_quorum: Option<usize>,
    pub fast_quorum: Option<usize>,
    pub checkpoint_every: Option<usize>,
    /// Instances between snapshots of the log; 0 never takes one.
    pub snapshot_every: Option<u64>,
    pub tick_ms: Option<u64>,
    pub heartbeat_ticks: Option<u64>,
    pub election_ticks: Option<u64>,
    pub retry_ticks: Option<u64>,
    pub sync_ticks: Option<u64>,
    pub max_batch: Option<usize>,
    /// Instances a client session may stay idle before it expires; 0
    /// never expires one.
    pub session_idle_instances: Option<u64>,
    /// Bank accounts and the balance each opens with.
    #[serde(default)]
    pub accounts: std::collections::BTreeMap<String, i64>,
    /// A deliberate protocol mistake, for the harness's planted-bug tests.
    /// Only builds with the `planted-bugs` feature know this field.
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<crate::protocol::PlantedBug>,
}

/// The c-struct set a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CStructKind {
    History,
    Sequence,
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        ConfigFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses the text of a configuration file (unknown keys refused).
    pub fn parse(text: &str) -> anyhow::Result<ConfigFile> {
        Ok(toml::from_str(text)?)
    }

    /// The protocol configuration for `n` nodes; refuses quorum sizes that
    /// break the Quorum Assumption (Section 5.1).
    pub fn protocol(&self, n: usize) -> anyhow::Result<(Config, CStructKind, Duration)> {
        let mut c = Config::new(n)?;
        if self.classic_quorum.is_some() || self.fast_quorum.is_some() {
            let classic = self.classic_quorum.unwrap_or(c.quorums.classic);
            let fast = self.fast_quorum.unwrap_or(c.quorums.fast);
            c.quorums = Quorums::new(n, classic, fast)?;
        }
        let positive = |name: &str, v: u64| {
            if v == 0 {
                anyhow::bail!("{name} must be at least 1");
            }
            Ok(v)
        };
        if let Some(v) = self.fast {
            c.fast = v;
        }
        if let Some(v) = self.checkpoint_every {
            c.checkpoint_every = positive("checkpoint_every", v as u64)? as usize;
        }
        if let Some(v) = self.snapshot_every {
            c.snapshot_every = v;
        }
        if let Some(v) = self.heartbeat_ticks {
            c.heartbeat_ticks = positive("heartbeat_ticks", v)?;
        }
        if let Some(v) = self.election_ticks {
            c.election_ticks = positive("election_ticks", v)?;
        }
        if let Some(v) = self.retry_ticks {
            c.retry_ticks = positive("retry_ticks", v)?;
        }
        if let Some(v) = self.sync_ticks {
            c.sync_ticks = positive("sync_ticks", v)?;
        }
        if let Some(v) = self.max_batch {
            c.max_batch = positive("max_batch", v as u64)? as usize;
        }
        if let Some(v) = self.session_idle_instances {
            c.session_idle_instances = v;
        }
        #[cfg(feature = "planted-bugs")]
        {
            c.planted = self.planted_bug;
        }
        let kind = match self.cstruct.as_deref() {
            None | Some("history") => CStructKind::History,
            Some("sequence") => CStructKind::Sequence,
            Some(other) => {
                anyhow::bail!("cstruct must be \"history\" or \"sequence\", not {other:?}")
            }
        };
        let tick = Duration::from_millis(positive("tick_ms", self.tick_ms.unwrap_or(10))?);
        Ok((c, kind, tick))
    }
}
