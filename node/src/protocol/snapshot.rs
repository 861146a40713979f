//! Snapshots at checkpoints (Section 6.3: "learned instances are applied,
//! snapshotted and forgotten").
//!
//! A node's log would otherwise hold every command it ever learned. Once
//! its learner has closed `snapshot_every` more instances, the driver asks
//! [`Replica::snapshot`](super::Replica::snapshot) for records that rebuild
//! its whole durable state and replaces the log with them. Those records
//! are, in order:
//!
//! 1. the [`SnapshotState`] as one or more [`Record::Snapshot`] parts: the
//!    learner's position (every instance below `instance` learned closed,
//!    `position` commands applied to the state machine, whose encoded state
//!    is `app`), the client sessions (histories have no duplicates, so a
//!    retry learned again later must still be recognised), the commands
//!    handed out but not yet applied when the snapshot was taken, the last
//!    closed instances (to answer lagging nodes' `Sync`), and the tail of
//!    the learned sequence (for `learned --from N` after a restart);
//! 2. the acceptor's promises: `mbal`, `bal` and `val` of every instance it
//!    has not forgotten;
//! 3. the leader's claimed round;
//! 4. what the learner learned of every instance at or above `instance`.
//!
//! The snapshot is taken from the replica's state after every write it
//! emitted, so the driver must queue the compaction behind those writes.

use super::message::{Instance, Record};
use super::session::Sessions;
use crate::command::Command;
use serde::{Deserialize, Serialize};

/// Snapshot parts are at most this large, well below a log frame's limit,
/// so a state machine of any size can be snapshotted.
pub const PART_BYTES: usize = 8 << 20;

/// How many closed instances a snapshot keeps for nodes a little behind;
/// a node further behind gets the snapshot itself.
pub const CLOSED_KEPT: usize = 16;

/// How many of the last learned commands a snapshot keeps for observers
/// that read the learned sequence after a restart; observers that fall
/// further behind are told the positions were compacted away.
pub const RECENT_KEPT: usize = 8192;

/// Everything a learner and its state machine need to resume from a
/// snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// Every instance below this one is learned closed.
    pub instance: Instance,
    /// How many learned commands `app` has applied.
    pub position: u64,
    /// Where instance `instance` starts in the learned sequence: below it
    /// every learner's sequence holds the same commands.
    pub open_start: u64,
    /// The state machine after those commands, encoded by the driver.
    pub app: Vec<u8>,
    /// The client sessions: which command ids the learner handed out.
    pub sessions: Sessions,
    /// Commands handed out after `position` but not yet applied, in order:
    /// they are handed out again on recovery.
    pub unapplied: Vec<(Instance, Command)>,
    /// The last closed instances' values.
    pub closed: Vec<(Instance, Vec<Command>)>,
    /// The learned sequence just before `position`.
    pub recent: Vec<Command>,
}

impl SnapshotState {
    /// The state encoded, as it travels in a state transfer.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("a snapshot of plain data encodes")
    }

    /// Decodes a whole encoded state; `instance` names it in errors.
    pub fn decode(instance: Instance, bytes: &[u8]) -> Result<SnapshotState, SnapshotError> {
        let undecodable = |reason: String| SnapshotError::Undecodable { instance, reason };
        let state: SnapshotState = crate::codec::decode_exact(bytes).map_err(undecodable)?;
        // What the rest of the node computes from these must not wrap.
        if state.recent.len() as u64 > state.position {
            return Err(undecodable(format!(
                "{} recent commands before position {}",
                state.recent.len(),
                state.position
            )));
        }
        if let Some((i, _)) = state.closed.iter().find(|(i, _)| *i >= state.instance) {
            return Err(undecodable(format!(
                "closed instance {i} is not below the snapshot's instance {}",
                state.instance
            )));
        }
        Ok(state)
    }

    /// The state as log records of at most [`PART_BYTES`] each.
    pub fn to_records(&self) -> Vec<Record> {
        records_of(self.instance, &self.encode())
    }
}

/// An encoded state as log records of at most [`PART_BYTES`] each.
pub fn records_of(instance: Instance, bytes: &[u8]) -> Vec<Record> {
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(PART_BYTES).collect()
    };
    let parts = chunks.len() as u32;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| Record::Snapshot {
            instance,
            part: i as u32,
            parts,
            bytes: c.to_vec(),
        })
        .collect()
}

/// Why a log's snapshot cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error(
        "snapshot of instance {instance}: part {part} of {parts} where part {expected} was due"
    )]
    OutOfOrder {
        instance: Instance,
        part: u32,
        parts: u32,
        expected: u32,
    },
    #[error("snapshot of instance {instance}: only {got} of its {parts} parts are in the log")]
    Incomplete {
        instance: Instance,
        got: u32,
        parts: u32,
    },
    #[error("snapshot of instance {instance} does not decode: {reason}")]
    Undecodable { instance: Instance, reason: String },
}

/// Collects a snapshot's parts during recovery.
#[derive(Debug, Default)]
pub struct Parts {
    instance: Instance,
    parts: u32,
    got: u32,
    bytes: Vec<u8>,
}

impl Parts {
    /// Takes the next part; returns the state once the last part is in.
    pub fn add(
        &mut self,
        instance: Instance,
        part: u32,
        parts: u32,
        bytes: &[u8],
    ) -> Result<Option<SnapshotState>, SnapshotError> {
        if part == 0 {
            *self = Parts {
                instance,
                parts,
                got: 0,
                bytes: Vec::new(),
            };
        }
        if part != self.got || instance != self.instance || parts != self.parts {
            return Err(SnapshotError::OutOfOrder {
                instance,
                part,
                parts,
                expected: self.got,
            });
        }
        self.bytes.extend_from_slice(bytes);
        self.got += 1;
        if self.got < self.parts {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.bytes);
        let state = SnapshotState::decode(instance, &bytes)?;
        *self = Parts::default();
        Ok(Some(state))
    }

    /// Fails if a snapshot was begun but not finished.
    pub fn finish(&self) -> Result<(), SnapshotError> {
        if self.got < self.parts {
            return Err(SnapshotError::Incomplete {
                instance: self.instance,
                got: self.got,
                parts: self.parts,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Op;

    /// The input `fuzz/run snapshot_decode` found: a length prefix that
    /// asked the decoder for 2^58 bytes and aborted the process.
    #[test]
    fn the_fuzzers_snapshot_is_refused() {
        let bytes = [
            0x53, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd,
            0xfd, 0xfd, 0x00, 0x00, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0x2a, 0x00, 0x04, 0x5d,
        ];
        assert!(SnapshotState::decode(0xff, &bytes).is_err());
    }

    /// What `fuzz/run log_replay` found: a snapshot holding more recent
    /// commands than its position made the learned log's base wrap.
    #[test]
    fn a_snapshot_that_contradicts_itself_is_refused() {
        let mut bad = state(4);
        bad.recent = vec![bad.unapplied[0].1.clone(); 41];
        let err = SnapshotState::decode(bad.instance, &bad.encode()).unwrap_err();
        assert!(
            err.to_string().contains("recent commands before position"),
            "{err}"
        );
        let mut bad = state(4);
        bad.closed.push((bad.instance, vec![]));
        assert!(SnapshotState::decode(bad.instance, &bad.encode()).is_err());
        let good = state(4);
        assert_eq!(
            SnapshotState::decode(good.instance, &good.encode()).unwrap(),
            good
        );
    }

    fn state(app_bytes: usize) -> SnapshotState {
        SnapshotState {
            instance: 7,
            position: 40,
            open_start: 38,
            app: (0..app_bytes).map(|i| i as u8).collect(),
            sessions: Sessions::default(),
            unapplied: vec![(
                7,
                Command::new(
                    1,
                    3,
                    Op::Put {
                        key: "k".into(),
                        value: "v".into(),
                    },
                ),
            )],
            closed: vec![(6, Vec::new())],
            recent: Vec::new(),
        }
    }

    fn reassemble(records: &[Record]) -> Result<Option<SnapshotState>, SnapshotError> {
        let mut parts = Parts::default();
        let mut last = None;
        for r in records {
            let Record::Snapshot {
                instance,
                part,
                parts: n,
                bytes,
            } = r
            else {
                panic!("not a snapshot part: {r:?}");
            };
            last = parts.add(*instance, *part, *n, bytes)?;
        }
        parts.finish()?;
        Ok(last)
    }

    #[test]
    fn a_small_snapshot_is_one_part_and_round_trips() {
        let s = state(10);
        let records = s.to_records();
        assert_eq!(records.len(), 1);
        assert_eq!(reassemble(&records), Ok(Some(s)));
    }

    #[test]
    fn a_large_snapshot_is_split_and_round_trips() {
        let s = state(2 * PART_BYTES + 5);
        let records = s.to_records();
        assert_eq!(records.len(), 3);
        assert_eq!(reassemble(&records), Ok(Some(s)));
    }

    #[test]
    fn missing_or_reordered_parts_are_refused() {
        let records = state(2 * PART_BYTES).to_records();
        assert!(matches!(
            reassemble(&records[..2]),
            Err(SnapshotError::Incomplete {
                got: 2,
                parts: 3,
                ..
            })
        ));
        let swapped = [records[0].clone(), records[2].clone(), records[1].clone()];
        assert!(matches!(
            reassemble(&swapped),
            Err(SnapshotError::OutOfOrder {
                part: 2,
                expected: 1,
                ..
            })
        ));
    }

    #[test]
    fn damaged_bytes_are_refused() {
        let Record::Snapshot {
            instance, parts, ..
        } = state(3).to_records()[0].clone()
        else {
            unreachable!()
        };
        let mut p = Parts::default();
        assert!(matches!(
            p.add(instance, 0, parts, &[0xff; 3]),
            Err(SnapshotError::Undecodable { .. })
        ));
    }
}
