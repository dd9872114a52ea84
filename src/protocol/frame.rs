//! Kafka framing: every request and response is a 4-byte big-endian signed size followed
//! by that many bytes.
//!
//! Frames are handed out as `Bytes` split off the read buffer, so a Produce or Fetch
//! frame is forwarded without copying its record data. The size limit is checked before
//! any byte of the body is buffered: a client cannot make the proxy allocate more than
//! the configured maximum. Writes send the size prefix and the frame in one vectored
//! write, again without copying the frame.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Decoder;

/// Size of the length prefix.
pub const SIZE_PREFIX: usize = 4;

/// Why a byte stream is not a valid sequence of Kafka frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} exceeds the limit of {limit} bytes{hint}")]
    TooLarge {
        size: i64,
        limit: usize,
        hint: &'static str,
    },
    #[error("negative frame size {0}")]
    NegativeSize(i32),
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// A short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } => "frame_too_large",
            FrameError::NegativeSize(_) => "negative_frame_size",
            FrameError::Truncated { .. } => "truncated_frame",
            FrameError::Io(_) => "io",
        }
    }
}

/// Decodes size-prefixed frames, yielding each frame without its prefix.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    limit: usize,
}

impl FrameCodec {
    pub fn new(limit: usize) -> Self {
        FrameCodec { limit }
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < SIZE_PREFIX {
            return Ok(None);
        }
        let size = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if size < 0 {
            return Err(FrameError::NegativeSize(size));
        }
        let size = size as usize;
        if size > self.limit {
            return Err(FrameError::TooLarge {
                size: size as i64,
                limit: self.limit,
                hint: foreign_protocol_hint(&src[..SIZE_PREFIX]),
            });
        }
        if src.len() < SIZE_PREFIX + size {
            src.reserve(SIZE_PREFIX + size - src.len());
            return Ok(None);
        }
        src.advance(SIZE_PREFIX);
        Ok(Some(src.split_to(size).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

/// Names the protocol a misdirected client most likely speaks, judged by its first bytes.
fn foreign_protocol_hint(prefix: &[u8]) -> &'static str {
    match prefix {
        [0x16, 0x03, ..] => " (looks like a TLS handshake: is the client configured for TLS?)",
        [b'G', b'E', b'T', b' '] | [b'P', b'O', b'S', b'T'] | [b'H', b'E', b'A', b'D'] => {
            " (looks like HTTP)"
        }
        _ => "",
    }
}

/// Writes one frame: the size prefix and the body in a single vectored write.
pub async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, frame: Bytes) -> io::Result<()> {
    let size = i32::try_from(frame.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame larger than 2 GiB"))?;
    let prefix = size.to_be_bytes();
    let mut buf = Buf::chain(&prefix[..], frame);
    writer.write_all_buf(&mut buf).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            out.extend_from_slice(&(body.len() as i32).to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    fn decode_all(codec: &mut FrameCodec, buf: &mut BytesMut) -> Result<Vec<Bytes>, FrameError> {
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(buf)? {
            frames.push(frame);
        }
        if let Some(frame) = codec.decode_eof(buf)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn oversized_frame_is_refused_before_buffering() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&framed(&[vec![0; 2048]])[..8]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { size: 2048, .. }),
            "{err}"
        );
        assert!(buf.capacity() < 2048);
    }

    #[test]
    fn negative_size_is_refused() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::NegativeSize(-5))
        ));
    }

    #[test]
    fn tls_and_http_clients_get_a_hint() {
        let mut codec = FrameCodec::new(1024);
        let err = codec
            .decode(&mut BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]))
            .unwrap_err();
        assert!(err.to_string().contains("HTTP"), "{err}");
        let err = codec
            .decode(&mut BytesMut::from(&[0x16, 0x03, 0x01, 0x02, 0x00][..]))
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    }

    #[test]
    fn eof_inside_a_frame_is_truncation() {
        let mut codec = FrameCodec::new(1024);
        let bytes = framed(&[vec![1; 10]]);
        let mut buf = BytesMut::from(&bytes[..7]);
        assert!(matches!(
            decode_all(&mut codec, &mut buf),
            Err(FrameError::Truncated { buffered: 7 })
        ));
    }

    #[tokio::test]
    async fn write_frame_prefixes_the_size() {
        let mut out = Vec::new();
        write_frame(&mut out, Bytes::from_static(b"abc"))
            .await
            .unwrap();
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
    }

    proptest! {
        /// Any split of a valid stream into reads yields the same frames, in order.
        #[test]
        fn frames_survive_any_chunking(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
            cuts in proptest::collection::vec(1usize..64, 0..40),
        ) {
            let stream = framed(&bodies);
            let mut codec = FrameCodec::new(1024);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            let mut rest = &stream[..];
            for cut in cuts.iter().cycle().take(stream.len() + 1) {
                if rest.is_empty() { break; }
                let n = (*cut).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                while let Some(frame) = codec.decode(&mut buf).unwrap() {
                    frames.push(frame.to_vec());
                }
            }
            buf.extend_from_slice(rest);
            frames.extend(decode_all(&mut codec, &mut buf).unwrap().into_iter().map(|f| f.to_vec()));
            prop_assert_eq!(frames, bodies);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut codec = FrameCodec::new(64);
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = decode_all(&mut codec, &mut buf);
        }
    }
}
