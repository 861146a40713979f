//! Exit codes as Jepsen's: the verdict's (0 valid, 1 invalid, 2 unknown,
//! `Verdict::exit_code`), 254 for arguments the harness refuses, 255 when
//! the harness itself failed. A script can then tell "the cluster is
//! broken" from "the test could not run" without reading the output.

use std::fmt;

/// Arguments the harness refuses: a clap usage error or a flag value out
/// of range.
pub const BAD_ARGUMENTS: i32 = 254;
/// The harness failed (an error out of a command, a panic): nothing was
/// judged.
pub const HARNESS_FAILED: i32 = 255;

/// An error that is the caller's arguments, not the harness's failure; it
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
        HARNESS_FAILED
    }
}
