//! The write-ahead log: round trips, group commit, torn tails, corruption
//! before the tail, compaction, and hostile file contents.

use gpaxos_node::app::StateMachine;
use gpaxos_node::cstruct::History;
use gpaxos_node::protocol::{Ballot, Config, Message, NodeId, Record, Replica};
use gpaxos_node::storage::{StorageError, Wal, COMPACT_FILE, LOG_FILE};
use gpaxos_node::{Command, Op};
use std::fs;
use std::path::Path;

/// `gpaxwal`, version 2, an 8-byte salt, the header's CRC32C.
const HEADER_LEN: u64 = 20;

/// The salt of the log in `dir`, from its header.
fn salt_of(dir: &Path) -> Vec<u8> {
    fs::read(log_path(dir)).unwrap()[8..16].to_vec()
}

/// The checksum of a frame in a log salted `salt`.
fn frame_crc(salt: &[u8], len: [u8; 4], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(crc32c::crc32c(salt), &len);
    crc32c::crc32c_append(crc, payload)
}

/// SplitMix64: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Up to `max - 1` random bytes.
    fn noise(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max) as usize;
        self.bytes(n)
    }
}

fn bal(round: u64, leader: u8, fast: bool) -> Ballot {
    let mut b = Ballot::ZERO;
    for _ in 0..round {
        b = b.next(leader.into(), fast);
    }
    b
}

fn put(client: u64, seq: u64, key: &str, value: &str) -> Command {
    Command::new(
        client,
        seq,
        Op::Put {
            key: key.into(),
            value: value.into(),
        },
    )
}

/// One record of every kind, then some more votes and learned commands.
fn sample_records(n: usize) -> Vec<Record> {
    let mut records = vec![
        Record::Promise {
            mbal: bal(1, 0, true),
        },
        Record::Rest {
            from: 0,
            bal: bal(1, 0, true),
        },
        Record::LeaderRound { round: 3 },
        Record::Vote {
            instance: 0,
            bal: bal(1, 0, true),
            base: 0,
            cmds: vec![put(1, 1, "a", "x"), put(2, 1, "b", "y")],
        },
        Record::Learned {
            instance: 0,
            cmds: vec![put(1, 1, "a", "x")],
        },
        Record::Forget { below: 1 },
    ];
    let mut i = 0u64;
    while records.len() < n {
        i += 1;
        let odd = i % 2 == 1;
        records.push(if !odd {
            Record::Vote {
                instance: i,
                bal: bal(2, 1, false),
                base: i as u32,
                cmds: vec![put(3, i, &format!("k{i}"), &"v".repeat(i as usize % 7))],
            }
        } else {
            Record::Learned {
                instance: i,
                cmds: vec![Command::new(
                    4,
                    i,
                    Op::Transfer {
                        from: "acct1".into(),
                        to: "acct2".into(),
                        amount: i as i64,
                    },
                )],
            }
        });
    }
    records.truncate(n);
    records
}

/// Writes `records` as a fresh log in `dir`, one sync per record; returns
/// the byte offset of every frame and the file's length.
fn write_log(dir: &Path, records: &[Record]) -> (Vec<u64>, u64) {
    let (mut wal, rec) = Wal::open(dir).unwrap();
    assert!(rec.records.is_empty());
    let mut offsets = Vec::new();
    for (i, r) in records.iter().enumerate() {
        offsets.push(wal.stats().file_bytes);
        wal.append([r]).unwrap();
        assert_eq!(wal.sync().unwrap(), i as u64 + 1);
    }
    let len = wal.stats().file_bytes;
    assert_eq!(fs::metadata(wal.path()).unwrap().len(), len);
    (offsets, len)
}

fn log_path(dir: &Path) -> std::path::PathBuf {
    dir.join(LOG_FILE)
}

fn open_records(dir: &Path) -> Vec<Record> {
    Wal::open(dir).unwrap().1.records
}

#[test]
fn empty_dir_gets_an_empty_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not/yet/there");
    let (wal, rec) = Wal::open(&dir).unwrap();
    assert!(rec.created);
    assert!(rec.records.is_empty());
    assert!(rec.torn_tail.is_none());
    assert_eq!(wal.durable(), 0);
    assert_eq!(fs::metadata(log_path(&dir)).unwrap().len(), HEADER_LEN);
    drop(wal);
    let (_, rec) = Wal::open(&dir).unwrap();
    assert!(!rec.created);
    assert!(rec.records.is_empty());
}

#[test]
fn round_trip_with_group_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(40);
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    wal.append(&records[..3]).unwrap();
    wal.append(&records[3..5]).unwrap();
    assert_eq!(wal.durable(), 0, "append alone promises nothing");
    assert_eq!(wal.sync().unwrap(), 5);
    assert_eq!(wal.stats().fsyncs, 1, "one fsync for both appends");
    assert_eq!(wal.stats().last_batch, 5);
    assert_eq!(wal.sync().unwrap(), 5);
    assert_eq!(
        wal.stats().fsyncs,
        1,
        "sync with nothing queued does not fsync"
    );
    wal.append(&records[5..]).unwrap();
    assert_eq!(wal.sync().unwrap(), 40);
    assert_eq!(wal.stats().max_batch, 35);
    drop(wal);
    assert_eq!(open_records(tmp.path()), records);
}

#[test]
fn unsynced_appends_are_not_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(6);
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    wal.append(&records[..4]).unwrap();
    wal.sync().unwrap();
    wal.append(&records[4..]).unwrap();
    drop(wal); // a crash before the sync
    assert_eq!(open_records(tmp.path()), records[..4]);
}

#[test]
fn durable_counts_only_this_incarnation() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(9);
    write_log(tmp.path(), &records[..5]);
    let (mut wal, rec) = Wal::open(tmp.path()).unwrap();
    assert_eq!(rec.records, records[..5]);
    assert_eq!(wal.durable(), 0);
    wal.append(&records[5..]).unwrap();
    assert_eq!(wal.sync().unwrap(), 4);
    drop(wal);
    assert_eq!(open_records(tmp.path()), records);
}

#[test]
fn torn_tail_at_every_cut_of_the_last_record_recovers_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(8);
    let (offsets, len) = write_log(tmp.path(), &records);
    let full = fs::read(log_path(tmp.path())).unwrap();
    let last = *offsets.last().unwrap();
    let extra = sample_records(12).pop().unwrap();
    for cut in last..len {
        let dir = tmp.path().join(format!("cut{cut}"));
        fs::create_dir(&dir).unwrap();
        fs::write(log_path(&dir), &full[..cut as usize]).unwrap();
        let (mut wal, rec) = Wal::open(&dir).unwrap();
        assert_eq!(rec.records, records[..7], "cut at {cut}");
        match rec.torn_tail {
            None => assert_eq!(cut, last),
            Some(t) => {
                assert_eq!(t.offset, last);
                assert_eq!(t.dropped_bytes, cut - last);
            }
        }
        assert_eq!(
            fs::metadata(log_path(&dir)).unwrap().len(),
            last,
            "tail cut off"
        );
        // The log goes on after the cut.
        wal.append([&extra]).unwrap();
        assert_eq!(wal.sync().unwrap(), 1);
        drop(wal);
        let mut expected = records[..7].to_vec();
        expected.push(extra.clone());
        assert_eq!(open_records(&dir), expected, "cut at {cut}");
    }
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(5);
    let (_, len) = write_log(tmp.path(), &records);
    let full = fs::read(log_path(tmp.path())).unwrap();
    let mut rng = Rng(7);
    let tails: Vec<Vec<u8>> = vec![
        vec![0; 4096],    // a file system extended the file with zeros
        vec![0xff; 100],  // impossible length
        rng.bytes(1),     // half a length
        rng.bytes(5000),  // noise
        rng.bytes(70000), // more noise
    ];
    for (i, tail) in tails.iter().enumerate() {
        let dir = tmp.path().join(format!("t{i}"));
        fs::create_dir(&dir).unwrap();
        fs::write(log_path(&dir), [full.as_slice(), tail].concat()).unwrap();
        let (_, rec) = Wal::open(&dir).unwrap();
        assert_eq!(rec.records, records, "tail {i}");
        let torn = rec.torn_tail.expect("torn tail reported");
        assert_eq!((torn.offset, torn.dropped_bytes), (len, tail.len() as u64));
    }
}

#[test]
fn a_flipped_bit_before_the_tail_refuses_naming_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(5);
    let (offsets, len) = write_log(tmp.path(), &records);
    let full = fs::read(log_path(tmp.path())).unwrap();
    let dir = tmp.path().join("flip");
    fs::create_dir(&dir).unwrap();
    let path = log_path(&dir);
    for byte in HEADER_LEN..len {
        for bit in 0..8 {
            let mut bytes = full.clone();
            bytes[byte as usize] ^= 1 << bit;
            fs::write(&path, &bytes).unwrap();
            let frame = offsets.iter().rposition(|&o| o <= byte).unwrap();
            let result = Wal::open(&dir);
            if frame == offsets.len() - 1 {
                // Damage to the last record looks like a torn write.
                let (_, rec) = result.unwrap();
                assert_eq!(rec.records, records[..frame]);
                continue;
            }
            let err = result.expect_err("corruption before the tail must refuse");
            assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
            assert_eq!(
                err.offset(),
                Some(offsets[frame]),
                "byte {byte} bit {bit}: {err}"
            );
            assert_eq!(err.path(), path);
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("byte {}", offsets[frame])), "{msg}");
            // Refusing leaves the file as it was, for an operator to look at.
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }
}

#[test]
fn a_flipped_header_bit_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), &sample_records(3));
    let full = fs::read(log_path(tmp.path())).unwrap();
    for byte in 0..HEADER_LEN as usize {
        let mut bytes = full.clone();
        bytes[byte] ^= 0x10;
        fs::write(log_path(tmp.path()), &bytes).unwrap();
        let err = Wal::open(tmp.path()).unwrap_err();
        assert!(matches!(err, StorageError::BadHeader { .. }), "{err}");
        assert!(err.to_string().contains(LOG_FILE), "{err}");
    }
}

#[test]
fn a_valid_checksum_over_an_undecodable_record_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, len) = write_log(tmp.path(), &sample_records(2));
    // A frame whose checksum is right but whose payload is no record
    // (variant 200 does not exist): a format mismatch, not a torn write.
    let payload = [200u8, 1, 2, 3];
    let len_bytes = (payload.len() as u32).to_le_bytes();
    let crc = frame_crc(&salt_of(tmp.path()), len_bytes, &payload);
    let mut bytes = fs::read(log_path(tmp.path())).unwrap();
    bytes.extend_from_slice(&len_bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(&payload);
    fs::write(log_path(tmp.path()), &bytes).unwrap();
    let err = Wal::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StorageError::Undecodable { .. }), "{err}");
    assert_eq!(err.offset(), Some(len));
    assert!(err.to_string().contains(&format!("byte {len}")), "{err}");
}

#[test]
fn compaction_round_trip_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(30);
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    wal.append(&records[..20]).unwrap();
    assert_eq!(wal.sync().unwrap(), 20);
    wal.append(&records[20..25]).unwrap();
    let snapshot = sample_records(3);
    // The snapshot stands for everything appended, the queued records too.
    assert_eq!(wal.compact(&snapshot).unwrap(), 25);
    assert_eq!(wal.stats().compactions, 1);
    assert_eq!(wal.stats().file_records, 3);
    assert!(!tmp.path().join(COMPACT_FILE).exists());
    assert_eq!(open_records(tmp.path()), snapshot);
    // Appends go on after the snapshot, in the same incarnation.
    wal.append(&records[25..]).unwrap();
    assert_eq!(wal.sync().unwrap(), 30);
    let mut expected = snapshot.clone();
    expected.extend_from_slice(&records[25..]);
    assert_eq!(wal.stats().file_records, expected.len() as u64);
    assert_eq!(
        fs::metadata(wal.path()).unwrap().len(),
        wal.stats().file_bytes
    );
    drop(wal);
    let (mut wal, rec) = Wal::open(tmp.path()).unwrap();
    assert_eq!(rec.records, expected);
    // And a second compaction after a restart, to nothing at all.
    assert_eq!(wal.compact([]).unwrap(), 0);
    drop(wal);
    assert!(open_records(tmp.path()).is_empty());
}

#[test]
fn an_unfinished_compaction_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(4);
    write_log(tmp.path(), &records);
    fs::write(tmp.path().join(COMPACT_FILE), b"gpaxwal\x01half a snap").unwrap();
    assert_eq!(open_records(tmp.path()), records);
    assert!(!tmp.path().join(COMPACT_FILE).exists());
}

#[test]
fn an_oversized_record_is_refused_and_nothing_is_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    let huge = Record::Learned {
        instance: 0,
        cmds: vec![put(
            1,
            1,
            "k",
            &"x".repeat(gpaxos_node::storage::MAX_RECORD_BYTES),
        )],
    };
    let small = sample_records(1);
    let err = wal.append([&small[0], &huge]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(wal.stats().appended, 0);
    assert_eq!(wal.sync().unwrap(), 0);
    assert!(wal.compact([&huge]).is_err());
    drop(wal);
    assert!(open_records(tmp.path()).is_empty());
}

#[test]
fn a_garbage_file_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    for (i, bytes) in [
        vec![],
        b"gpax".to_vec(),
        rng.bytes(3000),
        b"hello, world\n".to_vec(),
    ]
    .iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("g{i}"));
        fs::create_dir(&dir).unwrap();
        fs::write(log_path(&dir), bytes).unwrap();
        let err = Wal::open(&dir).unwrap_err();
        assert!(matches!(err, StorageError::BadHeader { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&log_path(&dir).display().to_string()),
            "{err}"
        );
    }
}

/// Random damage of every kind: opening never panics, and whatever it
/// accepts is a prefix of what was written (a checksum-valid frame that was
/// never written would need a 32-bit collision).
#[test]
fn random_damage_never_panics_and_never_invents_records() {
    let tmp = tempfile::tempdir().unwrap();
    let records = sample_records(12);
    let (_, len) = write_log(tmp.path(), &records);
    let full = fs::read(log_path(tmp.path())).unwrap();
    let dir = tmp.path().join("fuzz");
    fs::create_dir(&dir).unwrap();
    let mut rng = Rng(2024);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..600 {
        let mut bytes = full.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            match rng.below(5) {
                0 => bytes.truncate(at),
                1 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
                2 if at < bytes.len() => bytes[at] = rng.next() as u8,
                3 => {
                    let junk = rng.noise(64);
                    bytes.splice(at..at, junk);
                }
                _ => bytes.extend(rng.noise(200)),
            }
        }
        // Keep the header most of the time, so the frames get tested.
        if round % 8 != 0 && bytes.len() >= HEADER_LEN as usize {
            bytes[..HEADER_LEN as usize].copy_from_slice(&full[..HEADER_LEN as usize]);
        }
        fs::write(log_path(&dir), &bytes).unwrap();
        match Wal::open(&dir) {
            Ok((_, rec)) => {
                accepted += 1;
                assert!(records.starts_with(&rec.records), "round {round}");
                assert!(fs::metadata(log_path(&dir)).unwrap().len() <= bytes.len() as u64);
            }
            Err(e) => {
                refused += 1;
                assert!(e.to_string().contains(LOG_FILE), "{e}");
                assert!(e.offset().unwrap() < len.max(bytes.len() as u64));
            }
        }
    }
    assert!(
        accepted > 50 && refused > 50,
        "accepted {accepted}, refused {refused}"
    );
}

#[test]
fn header_then_noise_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(99);
    for _ in 0..200 {
        let mut bytes = b"gpaxwal\x01".to_vec();
        bytes.extend(rng.noise(2000));
        fs::write(log_path(tmp.path()), &bytes).unwrap();
        if let Ok((_, rec)) = Wal::open(tmp.path()) {
            assert!(rec.records.is_empty());
        }
    }
}

/// A driver for a few replicas on one thread, each with its own log and
/// state machine: the order a server must keep (append, sync, `durable`,
/// then send; apply what is learned; then snapshot when due).
struct Cluster {
    nodes: Vec<Node>,
    config: Config,
}

struct Node {
    replica: Replica<History>,
    wal: Wal,
    app: StateMachine,
}

impl Node {
    /// Drains the replica: writes to the log, learned commands to the state
    /// machine, a snapshot when one is due. Returns the messages.
    fn pump(&mut self) -> Vec<(NodeId, Message)> {
        let mut messages = Vec::new();
        loop {
            let out = self.replica.drain();
            if out.writes.is_empty() && out.messages.is_empty() && out.learned.is_empty() {
                return messages;
            }
            self.wal.append(&out.writes).unwrap();
            messages.extend(out.messages);
            for l in out.learned {
                self.app.apply(&l.cmd);
            }
            if self.replica.snapshot_due() {
                let records = self.replica.snapshot(self.app.snapshot_bytes());
                self.wal.compact(&records).unwrap();
            }
            self.replica.durable(self.wal.sync().unwrap());
        }
    }
}

impl Cluster {
    fn with_config(root: &Path, config: Config) -> Cluster {
        let nodes = (0..config.n())
            .map(|id| {
                let (wal, rec) = Wal::open(root.join(format!("n{id}"))).unwrap();
                assert!(rec.created);
                Node {
                    replica: Replica::new(id as NodeId, config.clone()),
                    wal,
                    app: StateMachine::new(),
                }
            })
            .collect();
        Cluster { nodes, config }
    }

    /// Runs until no node has anything to do.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut mail = Vec::new();
            for (id, node) in self.nodes.iter_mut().enumerate() {
                mail.extend(node.pump().into_iter().map(|(to, m)| (id as NodeId, to, m)));
            }
            if mail.is_empty() {
                return;
            }
            for (from, to, m) in mail {
                self.nodes[to as usize].replica.step(from, m);
            }
        }
        panic!("the cluster never settled");
    }

    /// Crashes node `id` and brings it back from its log alone; returns
    /// the learned commands it hands out again.
    fn restart(&mut self, id: usize, dir: &Path) -> Vec<Command> {
        self.nodes[id].wal.sync().unwrap();
        let (wal, rec) = Wal::open(dir.join(format!("n{id}"))).unwrap();
        assert!(rec.torn_tail.is_none());
        let mut replica =
            Replica::recover(id as NodeId, self.config.clone(), rec.records.iter()).unwrap();
        let mut app = StateMachine::new();
        if let Some(bytes) = replica.take_recovered_app() {
            app.restore_bytes(&bytes).unwrap();
        }
        let replay = replica.drain();
        assert!(replay.writes.is_empty() && replay.messages.is_empty());
        let relearned: Vec<Command> = replay.learned.into_iter().map(|l| l.cmd).collect();
        for c in &relearned {
            app.apply(c);
        }
        self.nodes[id] = Node { replica, wal, app };
        relearned
    }

    /// One round: every node proposes a put and ticks, then all settle.
    fn round(&mut self, seq: &mut u64) {
        for (id, node) in self.nodes.iter_mut().enumerate() {
            *seq += 1;
            node.replica
                .propose(put(id as u64, *seq, &format!("k{}", *seq % 4), "v"));
            node.replica.tick();
        }
        self.settle();
    }
}

#[test]
fn replicas_recover_their_promises_and_learned_commands_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::new(3).unwrap();
    config.snapshot_every = 0;
    let mut cluster = Cluster::with_config(tmp.path(), config);
    let mut seq = 0;
    for round in 0..30 {
        cluster.round(&mut seq);
        if round == 15 {
            let node = &cluster.nodes[1];
            let before = node.replica.learned_range(0, usize::MAX).unwrap();
            assert!(!before.is_empty(), "{}", node.replica.describe());
            let mbal = node.replica.mbal();
            let relearned = cluster.restart(1, tmp.path());
            assert_eq!(cluster.nodes[1].replica.mbal(), mbal, "promise survives");
            assert_eq!(relearned, before, "learned commands survive, in order");
        }
    }
    let learned: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.replica.learned_len())
        .collect();
    assert!(
        learned.iter().all(|&n| n > 0),
        "nothing learned: {learned:?}"
    );
    for node in &cluster.nodes {
        assert_eq!(node.wal.durable(), node.wal.stats().appended);
        assert!(node.wal.stats().fsyncs > 0, "{}", node.replica.describe());
    }
}

/// Snapshots at checkpoints (Section 6.3): the log is replaced by one that
/// starts with a snapshot, stays small however much is learned, and a node
/// restarted from it has the same promises, state machine and learned
/// sequence, and goes on learning with the others.
#[test]
fn snapshots_bound_the_log_and_a_restart_resumes_from_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::new(3).unwrap();
    config.checkpoint_every = 8;
    config.snapshot_every = 2;
    let mut cluster = Cluster::with_config(tmp.path(), config);
    let mut seq = 0;
    let mut largest_log = 0;
    for round in 0..150 {
        cluster.round(&mut seq);
        // The leader proposes checkpoints on its ticks.
        for _ in 0..3 {
            for node in cluster.nodes.iter_mut() {
                node.replica.tick();
            }
            cluster.settle();
        }
        largest_log = largest_log.max(cluster.nodes[2].wal.stats().file_records);
        if round % 50 == 49 {
            let node = &cluster.nodes[2];
            let (mbal, len, app) = (
                node.replica.mbal(),
                node.replica.learned_len(),
                node.app.clone(),
            );
            let tail = node.replica.learned_range(len - 5, usize::MAX).unwrap();
            let compactions = node.wal.stats().compactions;
            assert!(
                compactions > 0,
                "no snapshot was taken: {}",
                node.replica.describe()
            );
            cluster.restart(2, tmp.path());
            let node = &cluster.nodes[2];
            assert_eq!(node.replica.mbal(), mbal, "promise survives");
            assert_eq!(node.replica.learned_len(), len, "position survives");
            assert_eq!(node.app, app, "state machine survives");
            assert_eq!(
                node.replica.learned_range(len - 5, usize::MAX).unwrap(),
                tail,
                "the recent learned sequence survives"
            );
            let records = Wal::open(tmp.path().join("n2")).unwrap().1.records;
            assert!(
                matches!(records.first(), Some(Record::Snapshot { .. })),
                "a compacted log starts with its snapshot"
            );
        }
    }
    let lens: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.replica.learned_len())
        .collect();
    assert!(lens[0] >= 450, "{lens:?}");
    assert!(lens.iter().all(|&l| l == lens[0]), "{lens:?}");
    for node in &cluster.nodes[1..] {
        assert_eq!(node.app, cluster.nodes[0].app, "the state machines agree");
    }
    // 450 puts and their checkpoints, yet the log never held more than a
    // few instances' worth of records.
    assert!(largest_log < 120, "the log grew to {largest_log} records");
    assert!(cluster.nodes[0].replica.stats().snapshots >= 10);
}

/// A log whose snapshot lacks parts (or whose parts do not decode) is
/// refused: resuming without it would forget what was learned.
#[test]
fn a_log_with_a_broken_snapshot_is_refused() {
    let config = Config::new(3).unwrap();
    let part = |part, parts, bytes: Vec<u8>| Record::Snapshot {
        instance: 4,
        part,
        parts,
        bytes,
    };
    let err = Replica::<History>::recover(0, config.clone(), &[part(0, 2, vec![1, 2])])
        .err()
        .expect("an incomplete snapshot is refused");
    assert!(err.to_string().contains("only 1 of its 2 parts"), "{err}");
    let err = Replica::<History>::recover(0, config, &[part(0, 1, vec![0xff; 8])])
        .err()
        .expect("an undecodable snapshot is refused");
    assert!(err.to_string().contains("does not decode"), "{err}");
}

/// A frame in the log's format, checksummed the way a writer that does not
/// know the log's salt would (CRC32C over length and payload alone): what a
/// client can plant inside a value.
fn forged_frame(record: &Record) -> Vec<u8> {
    let payload = bincode::serde::encode_to_vec(record, bincode::config::standard()).unwrap();
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
    [&len[..], &crc.to_le_bytes(), &payload].concat()
}

/// A forged frame that is valid UTF-8, so it fits in a client's value.
fn forged_utf8_frame() -> String {
    (1u64..)
        .map(|round| forged_frame(&Record::LeaderRound { round }))
        .find_map(|bytes| String::from_utf8(bytes).ok())
        .unwrap()
}

/// A client stores a value holding a well-formed frame; the node crashes
/// while writing that value. The scan for a valid frame after the torn one
/// must not take the client's bytes for a record written after the tear
/// (which would refuse to start, calling a torn tail corruption).
#[test]
fn a_frame_inside_a_stored_value_does_not_turn_a_torn_tail_into_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let forged = forged_utf8_frame();
    let value = format!("{}{forged}{}", "a".repeat(40), "z".repeat(200));
    let mut records = sample_records(4);
    records.push(Record::Learned {
        instance: 9,
        cmds: vec![put(77, 1, "k", &value)],
    });
    let (offsets, len) = write_log(tmp.path(), &records);
    let full = fs::read(log_path(tmp.path())).unwrap();
    let last = *offsets.last().unwrap() as usize;
    let at = last + find(&full[last..], forged.as_bytes()).expect("the value is in the log");
    // Cut anywhere after the planted frame, inside the value.
    for cut in [at + forged.len(), at + forged.len() + 100, len as usize - 1] {
        fs::write(log_path(tmp.path()), &full[..cut]).unwrap();
        let (_, rec) = Wal::open(tmp.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(rec.records, records[..4], "cut at {cut}");
        assert_eq!(rec.torn_tail.unwrap().offset, last as u64);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A log written by the previous format (version 1: no salt) is still
/// read and appended to; its next compaction writes the current format.
#[test]
fn a_version_1_log_is_read_appended_to_and_compacted_to_version_2() {
    let tmp = tempfile::tempdir().unwrap();
    let old = sample_records(5);
    let mut bytes = b"gpaxwal\x01".to_vec();
    for r in &old {
        bytes.extend(forged_frame(r));
    }
    fs::write(log_path(tmp.path()), &bytes).unwrap();
    let (mut wal, rec) = Wal::open(tmp.path()).unwrap();
    assert_eq!(rec.records, old);
    let more = sample_records(8)[5..].to_vec();
    wal.append(&more).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (mut wal, rec) = Wal::open(tmp.path()).unwrap();
    assert_eq!(rec.records, [old.clone(), more].concat());
    wal.compact(&old).unwrap();
    drop(wal);
    assert_eq!(
        &fs::read(log_path(tmp.path())).unwrap()[..8],
        b"gpaxwal\x02"
    );
    assert_eq!(open_records(tmp.path()), old);
}
