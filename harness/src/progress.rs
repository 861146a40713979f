//! Progress of long commands (`test`, `sim`, `suite`, `bench`) on stderr:
//! an indicatif bar in a terminal, and where stderr is not one (CI logs,
//! a file) a plain line every few seconds instead, since a bar's redraws
//! would fill a log with control characters.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds between plain lines.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One command's progress: `pos` of `len` units (seconds of a test, seeds
/// of a sweep) and a message of counts.
pub struct Progress {
    what: String,
    len: u64,
    bar: Option<ProgressBar>,
    /// When the last plain line was printed, and the start.
    plain: Mutex<(Instant, Instant)>,
}

impl Progress {
    /// A bar in a terminal, plain lines elsewhere. `unit` names what `len`
    /// counts ("s", "seeds").
    pub fn new(what: &str, len: u64, unit: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let template = format!(
                "{{prefix}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} (eta {{eta}}) {{wide_msg}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            what: what.to_owned(),
            len,
            bar,
            plain: Mutex::new((now, now)),
        }
    }

    /// Sets the position and the message; prints a plain line if one is due.
    pub fn update(&self, pos: u64, msg: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos.min(self.len));
            bar.set_message(msg());
            return;
        }
        let mut plain = self.plain.lock().expect("progress lock");
        if plain.0.elapsed() >= PLAIN_EVERY {
            plain.0 = Instant::now();
            eprintln!(
                "{} [{:.0} s] {}/{} {}",
                self.what,
                plain.1.elapsed().as_secs_f64(),
                pos.min(self.len),
                self.len,
                msg()
            );
        }
    }

    /// Prints a line above the bar (or plainly) without tearing it.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar; the command prints its own summary after.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
