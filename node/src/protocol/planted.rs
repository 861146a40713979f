//! Deliberate protocol mistakes, compiled only with the `planted-bugs`
//! feature. The planted-bug tests turn one on and show that the simulator
//! and the checker catch it; builds without the feature contain none of them.

#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PlantedBug {
    /// The acceptor sends its 1b/2b before the state it reports is durable.
    ReplyBeforeDurable,
    /// Phase1b joins a ballot lower than the one already promised
    /// (docs/PAPER.md trap 1).
    Phase1bJoinsLower,
    /// A learner accepts a classic-size quorum of 2b messages in a fast
    /// ballot (docs/PAPER.md trap 3).
    FastLearnerClassicQuorum,
    /// ProvedSafe takes one acceptor's vote instead of the lub of the glbs
    /// (Definition 5).
    ProvedSafeOneVote,
    /// An acceptor appends proposals on its own in a classic ballot
    /// (docs/PAPER.md trap 2).
    FastVoteInClassic,
    /// A session's watermark is off by one: a retry of a client's latest
    /// command, chosen again in a later instance, runs twice.
    SessionOffByOne,
    /// A snapshot received from a peer is installed without its state
    /// machine: the node goes on from the state it had.
    InstallKeepsOldApp,
    /// A restarted node trusts what it reads from its log without fsyncing
    /// it first: records a crashed process left in the page cache are
    /// treated as durable (the simulator's disk honours it).
    SkipFsyncOnOpen,
}

#[cfg(feature = "planted-bugs")]
pub type Planted = Option<PlantedBug>;

#[cfg(not(feature = "planted-bugs"))]
pub type Planted = ();

/// Whether the planted bug `$bug` is active; always `false` in builds
/// without the `planted-bugs` feature.
#[cfg(feature = "planted-bugs")]
macro_rules! planted {
    ($p:expr, $bug:ident) => {
        $p == Some($crate::protocol::planted::PlantedBug::$bug)
    };
}

#[cfg(not(feature = "planted-bugs"))]
macro_rules! planted {
    ($p:expr, $bug:ident) => {{
        let _: &() = &$p;
        false
    }};
}

pub(crate) use planted;
