//! Frames: a 4-byte big-endian length (tokio-util's `LengthDelimitedCodec`)
//! followed by one value encoded with bincode 2 (serde, standard config).
//!
//! [`encode`] and [`decode`] are the only functions that know the encoding,
//! so it can be swapped here alone. A frame longer than the configured
//! maximum, a payload that does not decode, or one with bytes left over is
//! rejected with a [`FrameError`]; [`FrameReader`] then closes the
//! connection it came on.

use super::close_code;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::marker::PhantomData;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// The default maximum frame length: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;
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

/// The length-delimited codec with the given maximum frame length.
pub fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_frame)
        .new_codec()
}

/// Classifies an error from `FramedRead<_, LengthDelimitedCodec>`.
fn read_error(e: io::Error, max: usize) -> FrameError {
    let inner = e.get_ref();
    if inner.is_some_and(|i| i.is::<tokio_util::codec::LengthDelimitedCodecError>()) {
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
    inner: FramedRead<R, LengthDelimitedCodec>,
    conn: Option<quinn::Connection>,
    max_frame: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned, R: AsyncRead + Unpin> FrameReader<T, R> {
    pub fn new(stream: R, conn: Option<quinn::Connection>, max_frame: usize) -> Self {
        FrameReader {
            inner: FramedRead::new(stream, codec(max_frame)),
            conn,
            max_frame,
            _type: PhantomData,
        }
    }

    /// The next value, or `None` when the sender finished the stream.
    pub async fn recv(&mut self) -> Result<Option<T>, FrameError> {
        let result = match self.inner.next().await {
            None => return Ok(None),
            Some(Ok(frame)) => decode(&frame),
            Some(Err(e)) => Err(read_error(e, self.max_frame)),
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

    /// Reads the following frames as another type (after a hello, say).
    pub fn retype<U>(self) -> FrameReader<U, R> {
        FrameReader {
            inner: self.inner,
            conn: self.conn,
            max_frame: self.max_frame,
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
