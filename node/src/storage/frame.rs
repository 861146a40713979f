//! The log's byte format: a header (`gpaxwal`, a version byte and, from
//! version 2, an 8-byte random salt), then frames
//! `[len u32 LE][crc32c u32 LE][payload]` where the checksum covers the
//! salt, the length bytes and the payload, and the payload is one
//! bincode-encoded [`Record`].
//!
//! The salt is drawn afresh for every log file and never leaves the node,
//! so nobody outside can compute a valid checksum: a client value that
//! holds the bytes of a well-formed frame does not pass for one when
//! recovery searches for a valid frame after a damaged one. Version 1 logs
//! (no salt) are still read and appended to.
//!
//! Reading never trusts the bytes: every length is bounded, every slice is
//! checked, and a frame counts as valid only if its checksum matches and its
//! payload decodes to exactly one record.

use crate::protocol::Record;
use std::fmt;
use std::io;

/// The first bytes of every log file: a name, then a format version byte.
pub const MAGIC: &[u8; 7] = b"gpaxwal";
/// The format this build writes: version 2, salted checksums.
pub const VERSION: u8 = 2;
/// Bytes of salt in a version 2 header.
pub const SALT_LEN: usize = 8;

/// Bytes of a version 2 header: magic, version, salt, and a CRC32C of
/// those (a damaged salt would otherwise make every frame look torn).
pub const HEADER_LEN: usize = MAGIC.len() + 1 + SALT_LEN + 4;

/// A fresh version 2 header: the magic, the version, a random salt and
/// their checksum.
pub fn new_header() -> io::Result<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut salt = [0u8; SALT_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| io::Error::other("no randomness for the log's salt"))?;
    let mut header = [&MAGIC[..], &[VERSION], &salt].concat();
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    Ok(header)
}

/// Reads a header: the salt (empty in version 1) and where frames start.
/// `None` if the header is damaged or of an unknown version.
pub fn parse_header(bytes: &[u8]) -> Option<(&[u8], usize)> {
    if bytes.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    match bytes.get(MAGIC.len())? {
        1 => Some((&[], MAGIC.len() + 1)),
        2 => {
            let header = bytes.get(..HEADER_LEN)?;
            let (covered, crc) = header.split_at(HEADER_LEN - 4);
            if crc32c::crc32c(covered).to_le_bytes() != crc {
                return None;
            }
            Some((&covered[MAGIC.len() + 1..], HEADER_LEN))
        }
        _ => None,
    }
}

/// Bytes before a frame's payload: length and checksum.
pub const FRAME_OVERHEAD: usize = 8;

/// The largest payload a frame may carry. A length above it is corruption,
/// and the log refuses to write a record that large.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// The checksum of a frame: CRC32C over the log's salt, the frame's length
/// bytes and its payload, so a damaged length is caught too.
fn checksum(salt: &[u8], len: [u8; 4], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(crc32c::crc32c(salt), &len);
    crc32c::crc32c_append(crc, payload)
}

/// Appends one frame holding `record` to `buf`, for a log salted `salt`.
pub fn encode_frame(buf: &mut Vec<u8>, salt: &[u8], record: &Record) -> io::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_OVERHEAD]);
    let written = bincode::serde::encode_into_std_write(record, buf, bincode_config());
    let payload_len = match written {
        Ok(n) if (1..=MAX_RECORD_BYTES).contains(&n) => n,
        Ok(n) => {
            buf.truncate(start);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a record of {n} bytes does not fit a log frame (at most {MAX_RECORD_BYTES})"
                ),
            ));
        }
        Err(e) => {
            buf.truncate(start);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot encode a log record: {e}"),
            ));
        }
    };
    let len = (payload_len as u32).to_le_bytes();
    let crc = checksum(salt, len, &buf[start + FRAME_OVERHEAD..]);
    buf[start..start + 4].copy_from_slice(&len);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameProblem {
    /// Fewer bytes are left than the frame needs (a write cut short).
    Incomplete { need: u64, have: u64 },
    /// The length is zero or above [`MAX_RECORD_BYTES`].
    BadLength(u32),
    /// The checksum does not match the bytes.
    BadChecksum { stored: u32, computed: u32 },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameProblem::Incomplete { need, have } => {
                write!(f, "incomplete frame: {need} bytes needed, {have} left")
            }
            FrameProblem::BadLength(len) => write!(f, "impossible frame length {len}"),
            FrameProblem::BadChecksum { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
        }
    }
}

/// A frame whose checksum matched.
pub struct Frame<'a> {
    pub payload: &'a [u8],
    /// The offset just past the frame.
    pub end: usize,
}

/// Reads the frame starting at `pos` (which must be `< buf.len()`) of a
/// log salted `salt`.
pub fn frame_at<'a>(buf: &'a [u8], salt: &[u8], pos: usize) -> Result<Frame<'a>, FrameProblem> {
    let rest = buf.get(pos..).unwrap_or(&[]);
    if rest.len() < FRAME_OVERHEAD {
        return Err(FrameProblem::Incomplete {
            need: FRAME_OVERHEAD as u64,
            have: rest.len() as u64,
        });
    }
    let len = [rest[0], rest[1], rest[2], rest[3]];
    let stored = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let payload_len = u32::from_le_bytes(len);
    if payload_len == 0 || payload_len as usize > MAX_RECORD_BYTES {
        return Err(FrameProblem::BadLength(payload_len));
    }
    let need = FRAME_OVERHEAD + payload_len as usize;
    if rest.len() < need {
        return Err(FrameProblem::Incomplete {
            need: need as u64,
            have: rest.len() as u64,
        });
    }
    let payload = &rest[FRAME_OVERHEAD..need];
    let computed = checksum(salt, len, payload);
    if computed != stored {
        return Err(FrameProblem::BadChecksum { stored, computed });
    }
    Ok(Frame {
        payload,
        end: pos + need,
    })
}

/// Decodes a payload that must hold exactly one record.
pub fn decode_record(payload: &[u8]) -> Result<Record, String> {
    match bincode::serde::decode_from_slice::<Record, _>(payload, bincode_config()) {
        Ok((record, used)) if used == payload.len() => Ok(record),
        Ok((_, used)) => Err(format!(
            "{} trailing bytes after the record",
            payload.len() - used
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The offset of the first valid frame (checksum matches, payload decodes)
/// starting after `bad`, the offset of a frame that is not valid; `None` if
/// nothing after `bad` is a valid frame, which makes `bad` the start of a
/// torn tail.
///
/// A frame cut short or with a damaged length hides where the next frame
/// starts, so this tries every offset. It first tries the offset the bad
/// frame's own length points to, the common case of a damaged payload in
/// the middle of the log. Bytes a client chose (a stored value) can match
/// at some offset only by guessing the salted checksum (2^-32 a try).
pub fn next_valid_frame(buf: &[u8], salt: &[u8], bad: usize) -> Option<usize> {
    let valid = |pos: usize| {
        frame_at(buf, salt, pos).is_ok_and(|frame| decode_record(frame.payload).is_ok())
    };
    if let Some(len) = buf.get(bad..bad + 4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let next = bad.saturating_add(FRAME_OVERHEAD).saturating_add(len);
        if next < buf.len() && valid(next) {
            return Some(next);
        }
    }
    (bad + 1..buf.len().saturating_sub(FRAME_OVERHEAD)).find(|&pos| valid(pos))
}
