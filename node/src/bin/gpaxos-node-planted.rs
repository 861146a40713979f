//! `gpaxos-node` built with the `planted-bugs` feature, for the harness's
//! planted-bug tests only.

include!("../main.rs");
