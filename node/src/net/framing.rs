//! Frames: a 4-byte big-endian length (tokio-util's `LengthDelimitedCodec`)
//! followed by one value encoded with bincode 2 (serde, standard config).
//!
//! [`encode`] and [`decode`] are the only functions that know the encoding,
//! so it can be swapped here alone. A frame longer than the configured
//! maximum, a payload that does not decode, or one with bytes left over is
//! rejected with a [`FrameError`]; [`FrameReader`] then closes the
//! connection it came on.
//!
//! Reading buffers only the bytes that actually arrived (a length prefix
//! alone reserves nothing) and consumes nothing until a whole frame is
//! there, so a reader can tell a frame on its way from an idle stream and
//! give it a deadline ([`FrameReader::with_frame_deadline`]): a client that
//! sends half a frame and stalls loses its connection instead of holding
//! the buffer.

use super::close_code;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, FramedRead, FramedWrite, LengthDelimitedCodec};

/// The default maximum frame length: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;
/// The default maximum length of a frame a client sends: 1 MiB (etcd's
/// request limit is 1.5 MiB). Responses to clients may be as long as peer
/// frames.
pub const DEFAULT_MAX_CLIENT_FRAME: usize = 1 << 20;
/// The largest maximum frame length a configuration may set: 64 MiB. It is
/// also bincode's decode limit, which bounds what a length prefix inside a
/// frame can make the decoder allocate.
pub const MAX_FRAME_LIMIT: usize = 64 << 20;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Why a frame could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("frame length prefix exceeds the limit of {max} bytes")]
    LengthTooLarge { max: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("a frame took longer than {0:?} to arrive")]
    Deadline(Duration),
    #[error("stream closed")]
    Closed,
    #[error("stream: {0}")]
    Io(#[source] io::Error),
}

impl FrameError {
    /// True when the bytes themselves were bad (as opposed to the stream or
    /// connection failing): the connection they came on must be closed.
    pub fn is_bad_frame(&self) -> bool {
        matches!(
            self,
            FrameError::TooLarge { .. }
                | FrameError::LengthTooLarge { .. }
                | FrameError::Malformed(_)
                | FrameError::Truncated
                | FrameError::Deadline(_)
        )
    }
}

/// Encodes one value as a frame payload.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, FrameError> {
    bincode::serde::encode_to_vec(value, config())
        .map(Bytes::from)
        .map_err(|e| FrameError::Encode(e.to_string()))
}

/// Decodes one frame payload; every byte must be used.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let limited = config().with_limit::<MAX_FRAME_LIMIT>();
    let (value, used) = bincode::serde::decode_from_slice(payload, limited)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if used != payload.len() {
        return Err(FrameError::Malformed(format!(
            "{} bytes left over after the value",
            payload.len() - used
        )));
    }
    Ok(value)
}

/// The length-delimited codec with the given maximum frame length (the
/// writing side).
pub fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_frame)
        .new_codec()
}

/// A length prefix above the limit.
#[derive(Debug, thiserror::Error)]
#[error("frame length {len} exceeds the limit of {max} bytes")]
struct LengthError {
    len: usize,
    max: usize,
}

/// The reading side of [`codec`]'s format: a 4-byte big-endian length and
/// the payload. It consumes nothing until the whole frame is buffered, so
/// a non-empty buffer means a frame is on its way, and reserves nothing for
/// a length it has only been told.
struct FrameDecoder {
    max: usize,
}

impl Decoder for FrameDecoder {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(&[a, b, c, d]) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len > self.max {
            let error = LengthError { len, max: self.max };
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        if src.len() < 4 + len {
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len)))
    }
}

/// Classifies an error from the frame decoder.
fn read_error(e: io::Error, max: usize) -> FrameError {
    let inner = e.get_ref();
    if inner.is_some_and(|i| i.is::<LengthError>()) {
        FrameError::LengthTooLarge { max }
    } else if inner.is_some_and(|i| i.is::<quinn::ReadError>()) {
        FrameError::Io(e)
    } else if e.kind() == io::ErrorKind::Other && e.to_string().contains("bytes remaining") {
        FrameError::Truncated
    } else {
        FrameError::Io(e)
    }
}

/// Reads typed frames from a stream. On a bad frame it closes `conn` (when
/// given) with [`close_code::BAD_FRAME`], logs, and returns the error.
pub struct FrameReader<T, R = quinn::RecvStream> {
    inner: FramedRead<R, FrameDecoder>,
    conn: Option<quinn::Connection>,
    max_frame: usize,
    /// How long a frame may take from its first byte to its last.
    deadline: Option<Duration>,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned, R: AsyncRead + Unpin> FrameReader<T, R> {
    pub fn new(stream: R, conn: Option<quinn::Connection>, max_frame: usize) -> Self {
        FrameReader {
            inner: FramedRead::new(stream, FrameDecoder { max: max_frame }),
            conn,
            max_frame,
            deadline: None,
            _type: PhantomData,
        }
    }

    /// Gives every frame `deadline` (give or take a quarter) from its first
    /// byte to its last; a frame late is a bad frame
    /// ([`FrameError::Deadline`]). Waiting between frames is not bounded.
    pub fn with_frame_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline).filter(|d| !d.is_zero());
        self
    }

    /// The next value, or `None` when the sender finished the stream.
    /// Cancel-safe: a frame partly read stays buffered.
    pub async fn recv(&mut self) -> Result<Option<T>, FrameError> {
        let next = match self.deadline {
            None => Ok(self.inner.next().await),
            Some(deadline) => self.next_within(deadline).await,
        };
        let result = match next {
            Ok(None) => return Ok(None),
            Ok(Some(Ok(frame))) => decode(&frame),
            Ok(Some(Err(e))) => Err(read_error(e, self.max_frame)),
            Err(e) => Err(e),
        };
        match result {
            Ok(value) => Ok(Some(value)),
            Err(e) => {
                if e.is_bad_frame() {
                    self.reject(&e);
                }
                Err(e)
            }
        }
    }

    /// The next frame, failing once a frame has been on its way for
    /// `deadline`. Looks every quarter of it whether part of a frame is
    /// buffered, and counts a frame from the look before the one that first
    /// saw it.
    async fn next_within(
        &mut self,
        deadline: Duration,
    ) -> Result<Option<io::Result<BytesMut>>, FrameError> {
        let tick = deadline / 4;
        let mut started: Option<Instant> = None;
        loop {
            match tokio::time::timeout(tick, self.inner.next()).await {
                Ok(next) => return Ok(next),
                Err(_) if self.inner.read_buffer().is_empty() => started = None,
                Err(_) => {
                    let now = Instant::now();
                    let since = *started.get_or_insert(now.checked_sub(tick).unwrap_or(now));
                    if since.elapsed() >= deadline {
                        return Err(FrameError::Deadline(deadline));
                    }
                }
            }
        }
    }

    /// Reads the following frames as another type (after a hello, say).
    pub fn retype<U>(self) -> FrameReader<U, R> {
        FrameReader {
            inner: self.inner,
            conn: self.conn,
            max_frame: self.max_frame,
            deadline: self.deadline,
            _type: PhantomData,
        }
    }

    fn reject(&self, e: &FrameError) {
        match &self.conn {
            Some(conn) => {
                tracing::error!(remote = %conn.remote_address(), error = %e, "bad frame; closing the connection");
                conn.close(close_code::BAD_FRAME.into(), b"bad frame");
            }
            None => tracing::error!(error = %e, "bad frame"),
        }
    }
}

/// Writes typed frames to a stream. [`FrameWriter::feed`] buffers, so
/// feeding several values and then calling [`FrameWriter::flush`] sends
/// them in one write.
pub struct FrameWriter<T, W = quinn::SendStream> {
    inner: FramedWrite<W, LengthDelimitedCodec>,
    max_frame: usize,
    _type: PhantomData<fn(&T)>,
}

impl<T: Serialize, W: AsyncWrite + Unpin> FrameWriter<T, W> {
    pub fn new(stream: W, max_frame: usize) -> Self {
        let mut inner = FramedWrite::new(stream, codec(max_frame));
        inner.set_backpressure_boundary(64 << 10);
        FrameWriter {
            inner,
            max_frame,
            _type: PhantomData,
        }
    }

    /// Encodes and buffers one value. A value too large for a frame is an
    /// error that leaves the stream usable.
    pub async fn feed(&mut self, value: &T) -> Result<(), FrameError> {
        let payload = encode(value)?;
        self.feed_encoded(payload).await
    }

    /// Buffers a payload produced by [`encode`].
    pub async fn feed_encoded(&mut self, payload: Bytes) -> Result<(), FrameError> {
        if payload.len() > self.max_frame {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: self.max_frame,
            });
        }
        SinkExt::<Bytes>::feed(&mut self.inner, payload)
            .await
            .map_err(FrameError::Io)
    }

    pub async fn flush(&mut self) -> Result<(), FrameError> {
        SinkExt::<Bytes>::flush(&mut self.inner)
            .await
            .map_err(FrameError::Io)
    }

    /// Feeds and flushes one value.
    pub async fn send(&mut self, value: &T) -> Result<(), FrameError> {
        self.feed(value).await?;
        self.flush().await
    }

    /// Writes the following frames as another type.
    pub fn retype<U>(self) -> FrameWriter<U, W> {
        FrameWriter {
            inner: self.inner,
            max_frame: self.max_frame,
            _type: PhantomData,
        }
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.inner.get_mut()
    }
}

impl<T: Serialize> FrameWriter<T, quinn::SendStream> {
    /// Flushes and finishes the stream: the reader sees the end after every
    /// frame written.
    pub async fn finish(&mut self) -> Result<(), FrameError> {
        self.flush().await?;
        self.inner
            .get_mut()
            .finish()
            .map_err(|e| FrameError::Io(io::Error::other(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Ballot, Message};
    use tokio::io::AsyncWriteExt;

    #[test]
    fn values_round_trip_and_leftovers_are_refused() {
        let msg = Message::Phase1a { bal: Ballot::ZERO };
        let bytes = encode(&msg).unwrap();
        assert_eq!(decode::<Message>(&bytes).unwrap(), msg);
        let mut padded = bytes.to_vec();
        padded.push(0);
        assert!(matches!(
            decode::<Message>(&padded),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn a_huge_length_inside_a_frame_is_refused_without_allocating_it() {
        // A string claiming 2^62 bytes: bincode's limit refuses the claim
        // before allocating.
        let mut bytes = vec![253u8]; // varint: a u64 follows
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        let err = decode::<String>(&bytes).unwrap_err();
        assert!(err.is_bad_frame(), "{err}");
    }

    #[tokio::test]
    async fn the_reader_tells_oversized_and_truncated_frames_from_good_ones() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::<String, _>::new(rx, None, 1024);
        let good = encode(&"hello".to_string()).unwrap();
        tx.write_all(&(good.len() as u32).to_be_bytes())
            .await
            .unwrap();
        tx.write_all(&good).await.unwrap();
        tx.write_all(&2000u32.to_be_bytes()).await.unwrap();
        assert_eq!(reader.recv().await.unwrap().as_deref(), Some("hello"));
        let err = reader.recv().await.unwrap_err();
        assert!(
            matches!(err, FrameError::LengthTooLarge { max: 1024 }),
            "{err}"
        );

        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::<String, _>::new(rx, None, 1024);
        tx.write_all(&[0, 0, 0, 10, 1, 2]).await.unwrap();
        drop(tx);
        let err = reader.recv().await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
    }

    /// A length prefix alone reserves nothing: the buffer holds only the
    /// bytes that arrived (tokio-util's codec reserves the announced
    /// length at once).
    #[tokio::test]
    async fn a_length_prefix_alone_reserves_nothing() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::<String, _>::new(rx, None, 16 << 20);
        tx.write_all(&(16u32 << 20).to_be_bytes()).await.unwrap();
        tx.write_all(&[1, 2, 3]).await.unwrap();
        let pending = tokio::time::timeout(Duration::from_millis(50), reader.recv()).await;
        assert!(pending.is_err(), "no frame yet");
        let capacity = reader.inner.read_buffer().capacity();
        assert!(capacity < 1 << 20, "reserved {capacity} bytes");
    }

    /// With a deadline, half a frame that stalls is a bad frame, while a
    /// stream idle between frames waits as long as it likes.
    #[tokio::test]
    async fn a_stalled_frame_misses_its_deadline_and_an_idle_stream_does_not() {
        let deadline = Duration::from_millis(200);
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut reader =
            FrameReader::<String, _>::new(rx, None, 1024).with_frame_deadline(deadline);
        let idle = tokio::time::timeout(Duration::from_millis(600), reader.recv()).await;
        assert!(idle.is_err(), "an idle stream is not an error: {idle:?}");
        let good = encode(&"late but whole".to_string()).unwrap();
        tx.write_all(&(good.len() as u32).to_be_bytes())
            .await
            .unwrap();
        tx.write_all(&good).await.unwrap();
        assert_eq!(
            reader.recv().await.unwrap().as_deref(),
            Some("late but whole")
        );

        tx.write_all(&100u32.to_be_bytes()).await.unwrap();
        tx.write_all(&[0; 10]).await.unwrap();
        let began = Instant::now();
        let err = reader.recv().await.unwrap_err();
        assert!(matches!(err, FrameError::Deadline(_)), "{err}");
        assert!(err.is_bad_frame());
        let took = began.elapsed();
        assert!(took < deadline * 2, "took {took:?}");
    }

    #[tokio::test]
    async fn the_writer_refuses_a_value_too_large_and_stays_usable() {
        let (tx, rx) = tokio::io::duplex(1 << 16);
        let mut writer = FrameWriter::<String, _>::new(tx, 64);
        let mut reader = FrameReader::<String, _>::new(rx, None, 64);
        let err = writer.send(&"x".repeat(100)).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 64, .. }), "{err}");
        writer.send(&"ok".to_string()).await.unwrap();
        assert_eq!(reader.recv().await.unwrap().as_deref(), Some("ok"));
    }
}
