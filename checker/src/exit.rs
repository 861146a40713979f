//! Exit codes as Jepsen's, for both binaries: the verdict's (0 valid,
//! 1 invalid, 2 unknown, `Verdict::exit_code`), 254 for arguments the
//! program refuses, 255 when the program itself failed. A script can then
//! tell "the cluster is broken" from "the test could not run" without
//! reading the output.

use std::fmt;

/// Arguments the program refuses: a clap usage error or a flag value out
/// of range.
pub const BAD_ARGUMENTS: i32 = 254;
/// The program failed (an error out of a command, a panic): nothing was
/// judged.
pub const FAILED: i32 = 255;

/// An error that is the caller's arguments, not the program's failure; it
/// makes the process exit with `BAD_ARGUMENTS`.
#[derive(Debug)]
pub struct BadArgument(pub String);

impl fmt::Display for BadArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArgument {}

/// `Err(BadArgument)` as an `anyhow::Error`, for `?` and `return Err(..)`.
pub fn bad_argument(message: impl Into<String>) -> anyhow::Error {
    BadArgument(message.into()).into()
}

/// The exit code of an error out of a command.
pub fn code_of(error: &anyhow::Error) -> i32 {
    if error.downcast_ref::<BadArgument>().is_some() {
        BAD_ARGUMENTS
    } else {
        FAILED
    }
}

/// The command line, or the process ends: clap's own exit code for a
/// usage error is 2, which here means "unknown", so a usage error exits
/// with `BAD_ARGUMENTS`; --help and --version print to stdout and succeed.
pub fn parse_or_exit<C: clap::Parser>() -> C {
    match C::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { BAD_ARGUMENTS } else { 0 });
        }
    }
}

/// Runs a command and exits with its code, or the code of its error
/// (printed as `program: error`). A panic is the program failing, not a
/// verdict: the hook has printed it, and the exit code says so (Rust's
/// is 101).
pub fn run_and_exit(program: &str, command: impl FnOnce() -> anyhow::Result<i32>) -> ! {
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(command)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("{program}: error: {e:#}");
            code_of(&e)
        }
        Err(_) => FAILED,
    };
    std::process::exit(code)
}
