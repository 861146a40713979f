//! Arbitrary bytes as a snapshot received from a peer: decoding refuses
//! them or gives a state that encodes again to bytes that decode alike.
#![no_main]

use gpaxos_node::protocol::snapshot::SnapshotState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&instance, bytes)) = data.split_first() else {
        return;
    };
    let instance = u64::from(instance);
    if let Ok(state) = SnapshotState::decode(instance, bytes) {
        let again = SnapshotState::decode(instance, &state.encode())
            .expect("an encoded snapshot decodes");
        assert_eq!(again.encode(), state.encode());
    }
});
