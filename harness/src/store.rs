//! The run directory (docs/DESIGN.md section 4): `store/<test>/<timestamp>/`
//! with `history.jsonl` appended while the run goes, `test.json`,
//! `nodes/<n>.log`, `harness.log` (the harness's own log of the run, see
//! `logging`), and `store/latest`; `judge` adds the verdict's files.

use anyhow::{Context, Result};
use gpaxos_checker::history::{History, Record};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct RunDir {
    pub path: PathBuf,
    file: Mutex<BufWriter<File>>,
    history: Mutex<History>,
}

impl RunDir {
    pub fn create(store: &Path, test: &str) -> Result<RunDir> {
        let stamp = chrono_like_stamp();
        let path = store.join(test).join(&stamp);
        std::fs::create_dir_all(path.join("nodes"))
            .with_context(|| format!("creating {}", path.display()))?;
        let latest = store.join("latest");
        let _ = std::fs::remove_file(&latest);
        #[cfg(unix)]
        std::os::unix::fs::symlink(Path::new(test).join(&stamp), &latest)
            .with_context(|| format!("linking {}", latest.display()))?;
        let file = File::create(path.join("history.jsonl"))?;
        // From here on the harness's log lines are this run's.
        crate::logging::start_run(&path)?;
        tracing::info!(dir = %path.display(), "setup: run directory created");
        Ok(RunDir {
            path,
            file: Mutex::new(BufWriter::new(file)),
            history: Mutex::new(History::new()),
        })
    }

    /// Appends a record to the history, on disk at once (a crash of the
    /// harness keeps what was recorded).
    pub fn record(&self, r: Record) {
        let mut one = History::new();
        one.push(r.clone());
        let mut f = self.file.lock().expect("history file lock");
        let _ = one.write_jsonl(&mut *f);
        let _ = f.flush();
        self.history.lock().expect("history lock").push(r);
    }

    pub fn history(&self) -> History {
        self.history.lock().expect("history lock").clone()
    }

    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<()> {
        std::fs::write(self.path.join(name), serde_json::to_string_pretty(value)?)?;
        Ok(())
    }
}

/// `YYYYMMDDTHHMMSS` in UTC, from the system clock, without a date crate.
fn chrono_like_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
