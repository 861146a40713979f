//! A log file made of frames with valid checksums around arbitrary
//! payloads (and, as the input says, a torn or garbage tail), opened and
//! replayed as a restarting node would: refused with an error, or records
//! the replica recovers from or refuses; never a panic or an overflow.
//! Valid checksums matter: random bytes alone never pass the checksum, and
//! the fuzzer would only ever test the first frame's rejection.
#![no_main]

use gpaxos_node::cstruct::History;
use gpaxos_node::protocol::{Config, Replica};
use gpaxos_node::storage::{create_dir_durable, Fs, MemFs, Wal, LOG_FILE};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;

/// A version 1 log (unsalted checksums) holding `data`'s chunks as frames.
fn log_bytes(data: &[u8]) -> Vec<u8> {
    let mut log = b"gpaxwal\x01".to_vec();
    let Some((&flags, mut rest)) = data.split_first() else {
        return log;
    };
    while let Some((&len, tail)) = rest.split_first() {
        let len = (len as usize).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        if payload.is_empty() {
            continue;
        }
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
        log.extend_from_slice(&len);
        log.extend_from_slice(&crc.to_le_bytes());
        log.extend_from_slice(payload);
    }
    if flags & 1 == 1 {
        // A torn tail: the last frame cut short.
        let cut = (flags as usize >> 1).min(log.len().saturating_sub(8));
        log.truncate(log.len() - cut);
    }
    log
}

fuzz_target!(|data: &[u8]| {
    let fs = MemFs::new();
    let dir = Path::new("/data");
    create_dir_durable(&fs, dir).expect("a directory in memory");
    {
        let mut file = fs.create(&dir.join(LOG_FILE)).expect("a file in memory");
        let bytes = log_bytes(data);
        let mut left = &bytes[..];
        while !left.is_empty() {
            let n = file.write(left).expect("writes in memory");
            left = &left[n..];
        }
        file.sync_all().expect("syncs in memory");
    }
    let Ok((_wal, recovered)) = Wal::open_in(Arc::new(fs), dir) else {
        return;
    };
    let config = Config::new(5).expect("five nodes");
    let _ = Replica::<History>::recover(0, config, &recovered.records);
});
