//! Running the host's commands (`docker`, `nsenter`, `ssh`, `scp`) with a
//! bound on their time, so that a hung engine or an unreachable host fails
//! the step that needed it instead of the whole run hanging.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `prog args` bounded by `secs` seconds; its stdout, or an error
/// with its stderr.
pub fn run(prog: &str, args: &[&str], secs: u64) -> Result<String> {
    run_with(None, prog, args, None, secs)
}

/// Like [`run`], in directory `dir`.
pub fn run_in(dir: &Path, prog: &str, args: &[&str], secs: u64) -> Result<String> {
    run_with(Some(dir), prog, args, None, secs)
}

/// Like [`run`], with `input` on its stdin: how a script reaches `sh -s`
/// in a namespace or on a host without a second layer of quoting.
pub fn run_input(prog: &str, args: &[&str], input: &str, secs: u64) -> Result<String> {
    run_with(None, prog, args, Some(input), secs)
}

fn run_with(
    dir: Option<&Path>,
    prog: &str,
    args: &[&str],
    input: Option<&str>,
    secs: u64,
) -> Result<String> {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", &secs.to_string(), prog])
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {prog} (is it installed?)"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A command that exits without reading its input is judged by its
        // exit status, not by the broken pipe.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out: Output = child.wait_with_output()?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    if out.status.code() == Some(124) {
        bail!("`{prog} {}` timed out after {secs} s", args.join(" "));
    }
    bail!(
        "`{prog} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        if err.is_empty() { "no message" } else { err }
    )
}

/// `word` quoted for a POSIX shell.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_and_wraps_the_rest() {
        assert_eq!(quote("10.78.0.11"), "10.78.0.11");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn input_reaches_the_command_and_failures_say_why() {
        assert_eq!(run_input("sh", &["-s"], "echo hi\n", 10).unwrap(), "hi\n");
        let e = run_input("sh", &["-s"], "echo oops >&2; exit 3\n", 10).unwrap_err();
        assert!(format!("{e:#}").contains("oops"), "{e:#}");
    }
}
