//! The simulator's nemesis injects the partition shapes the other backends'
//! nemesis has (from `gpaxos_harness::faults`): for each shape, some seed's
//! fault log and history name it, and the links the simulated network cut
//! are exactly the shape's, checked here against what each node must hear.

use gpaxos_checker::history::Record;
use gpaxos_harness::faults::grudge::hears;
use gpaxos_harness::faults::{Grudge, Partition};
use gpaxos_harness::sim::{run_seed, Faults, Injected, SimConfig};
use std::collections::BTreeSet;

const N: usize = 5;

/// Who each node must hear under `shape`, from the shape's definition.
fn expected_hearing(shape: &Partition) -> Vec<BTreeSet<usize>> {
    let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<usize>>();
    let all: Vec<usize> = (0..N).collect();
    (0..N)
        .map(|i| match shape {
            // On the ring each node hears itself and its two neighbours.
            Partition::MajoritiesRing(order) => {
                let k = order.iter().position(|&x| x == i).unwrap();
                set(&[order[(k + N - 1) % N], i, order[(k + 1) % N]])
            }
            // The leader hears only itself; the others all but it.
            Partition::IsolateLeader(v) if i == *v => set(&[i]),
            Partition::IsolateLeader(v) => all.iter().copied().filter(|x| x != v).collect(),
            // The middle node hears everyone; the others their side and it.
            Partition::Bridge(order) => {
                let k = order.iter().position(|&x| x == i).unwrap();
                match k.cmp(&(N / 2)) {
                    std::cmp::Ordering::Equal => set(&all),
                    std::cmp::Ordering::Less => set(&order[..=N / 2]),
                    std::cmp::Ordering::Greater => set(&order[N / 2..]),
                }
            }
            Partition::Split { order, cut } => {
                let k = order.iter().position(|&x| x == i).unwrap();
                set(if k < *cut {
                    &order[..*cut]
                } else {
                    &order[*cut..]
                })
            }
            other => panic!("the simulator drew {other:?}"),
        })
        .collect()
}

fn heard(cut: &Grudge) -> Vec<BTreeSet<usize>> {
    let nodes: Vec<usize> = (0..N).collect();
    (0..N)
        .map(|i| hears(cut, &nodes, i).into_iter().collect())
        .collect()
}

/// The descriptions of the partitions the history records.
fn recorded(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Nemesis(e) if e.f == "partition" && e.phase.as_deref() == Some("start") => {
                e.value.as_ref().and_then(|v| v.as_str()).map(str::to_owned)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_simulator_injects_every_partition_shape_exactly() {
    let cfg = SimConfig::new(N, 100, 0.1, Faults::Default).unwrap();
    let mut seen = BTreeSet::new();
    for seed in 0..60 {
        let out = run_seed(&cfg, seed);
        let log: Vec<&Injected> = out.partitions.iter().collect();
        let described = recorded(&out.history.records);
        assert_eq!(described.len(), log.len(), "seed {seed}: one record each");
        for (p, text) in log.iter().zip(&described) {
            assert_eq!(*text, p.shape.describe(), "seed {seed}");
            assert!(text.starts_with(p.shape.name()), "seed {seed}: {text}");
            assert_eq!(
                heard(&p.cut),
                expected_hearing(&p.shape),
                "seed {seed}: {text} cut {:?}",
                p.cut
            );
            seen.insert(p.shape.name());
        }
        if seen.len() == 4 {
            break;
        }
    }
    let want: BTreeSet<&str> = ["split", "bridge", "majorities-ring", "isolate-leader"].into();
    assert_eq!(seen, want, "shapes the simulator injected within 60 seeds");
}
