//! Fuzzes what a node does with bytes from the network: split them into
//! length-delimited frames (with the node's codec and a frame limit), then
//! decode each frame as the type the stream carries. Nothing may panic,
//! and whatever decodes must encode and decode back to the same value.
//!
//! The first input byte picks the type: a peer `Message`, the `PeerHello`
//! that opens a peer stream, a `ClientRequest` or a `ClientResponse`.

#![no_main]

use bytes::BytesMut;
use gpaxos_node::client::{ClientRequest, ClientResponse};
use gpaxos_node::net::{framing, PeerHello};
use gpaxos_node::protocol::Message;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use tokio_util::codec::Decoder;

/// A small limit, so that the fuzzer reaches "frame too large" easily.
const MAX_FRAME: usize = 1 << 16;

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(frame: &[u8]) {
    if let Ok(value) = framing::decode::<T>(frame) {
        let encoded = framing::encode(&value).expect("a decoded value encodes");
        let again = framing::decode::<T>(&encoded).expect("an encoded value decodes");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let decode: fn(&[u8]) = match selector % 4 {
        0 => check::<Message>,
        1 => check::<PeerHello>,
        2 => check::<ClientRequest>,
        _ => check::<ClientResponse>,
    };
    // The bytes as one frame payload...
    decode(rest);
    // ...and as a stream of frames.
    let mut codec = framing::codec(MAX_FRAME);
    let mut buf = BytesMut::from(rest);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => decode(&frame),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let _ = codec.decode_eof(&mut buf);
});
