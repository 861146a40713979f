//! Decoding bytes a node did not write itself (a snapshot from a peer, the
//! state machine inside it) with a bound on what the decoder may allocate.
//!
//! bincode allocates a string or byte vector as long as its length prefix
//! says before reading it, so eight hostile bytes could ask for an exabyte
//! and abort the process (found by `fuzz/run snapshot_decode`). A limit
//! stops that; it is picked from the input's length, so a whole value of
//! any size still decodes, while what a short input can claim stays within
//! a small multiple of its length.

use serde::de::DeserializeOwned;

/// Decodes `bytes`, which must hold exactly one `T`.
pub fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    // What a value of `n` encoded bytes claims is at most `n` (lengths
    // count bytes of input), so four times the input is room enough.
    let need = bytes.len().saturating_mul(4);
    let (value, used) = if need <= 1 << 20 {
        decode_limited::<T, { 1 << 20 }>(bytes)?
    } else if need <= 1 << 24 {
        decode_limited::<T, { 1 << 24 }>(bytes)?
    } else if need <= 1 << 28 {
        decode_limited::<T, { 1 << 28 }>(bytes)?
    } else if need <= 1 << 32 {
        decode_limited::<T, { 1 << 32 }>(bytes)?
    } else {
        decode_limited::<T, { 1 << 36 }>(bytes)?
    };
    if used != bytes.len() {
        return Err(format!("{} bytes left over", bytes.len() - used));
    }
    Ok(value)
}

fn decode_limited<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), String> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    bincode::serde::decode_from_slice(bytes, config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzzer's find: a string whose length prefix claims 2^58 bytes.
    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating_it() {
        let mut bytes = vec![0xfd]; // varint: a u64 length follows
        bytes.extend((1u64 << 58).to_le_bytes());
        bytes.extend(b"abc");
        let err = decode_exact::<String>(&bytes).expect_err("refused");
        assert!(err.contains("Limit"), "{err}");
        let ok: String = decode_exact(
            &bincode::serde::encode_to_vec("x".repeat(300_000), bincode::config::standard())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(ok.len(), 300_000);
    }
}
