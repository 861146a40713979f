//! A log file with arbitrary bytes, opened and replayed as a restarting
//! node would: the log must be refused with an error or give records the
//! replica recovers from (or refuses); never a panic or an overflow.
#![no_main]

use gpaxos_node::cstruct::History;
use gpaxos_node::protocol::{Config, Replica};
use gpaxos_node::storage::{create_dir_durable, Fs, MemFs, Wal, LOG_FILE};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let fs = MemFs::new();
    let dir = Path::new("/data");
    create_dir_durable(&fs, dir).expect("a directory in memory");
    {
        let mut file = fs.create(&dir.join(LOG_FILE)).expect("a file in memory");
        let mut left = data;
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
