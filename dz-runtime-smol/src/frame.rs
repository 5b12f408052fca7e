//! Frames on the wire: a 4-byte big-endian length, then that many bytes of payload.
//!
//! The length is checked against the limit before anything is allocated for the payload, so a
//! peer that announces 4 GiB costs nothing but its connection.

use futures_lite::io::{AsyncRead, AsyncReadExt};

use crate::error::FrameError;

/// The length prefix's size.
pub(crate) const HEADER: usize = 4;

/// Starts a frame at the end of `buf`; returns where, for [`end`].
pub(crate) fn begin(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    at
}

/// Ends the frame begun at `at`, writing its length. A payload over `u32::MAX` bytes cannot be
/// framed: it is removed and `false` returned.
pub(crate) fn end(buf: &mut Vec<u8>, at: usize) -> bool {
    let len = buf.len() - at - HEADER;
    match u32::try_from(len) {
        Ok(len) => {
            buf[at..at + HEADER].copy_from_slice(&len.to_be_bytes());
            true
        }
        Err(_) => {
            buf.truncate(at);
            false
        }
    }
}

/// Reads one frame's payload into `buf` (replacing what it held). `Ok(false)` at a clean end of
/// the stream (before a frame began).
///
/// # Errors
///
/// [`FrameError::TooLarge`] when the frame announces more than `max` bytes (nothing is read or
/// allocated past the header), [`FrameError::Io`] when reading fails or the stream ends inside a
/// frame.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = reader.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        got += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back() {
        let mut buf = Vec::new();
        let at = begin(&mut buf);
        buf.extend_from_slice(b"hello");
        assert!(end(&mut buf, at));
        let at = begin(&mut buf);
        assert!(end(&mut buf, at));
        let mut reader = &buf[..];
        let mut out = Vec::new();
        futures_lite::future::block_on(async {
            assert!(read(&mut reader, 16, &mut out).await.unwrap());
            assert_eq!(out, b"hello");
            assert!(read(&mut reader, 16, &mut out).await.unwrap());
            assert!(out.is_empty());
            assert!(!read(&mut reader, 16, &mut out).await.unwrap());
        });
    }

    #[test]
    fn an_oversized_frame_is_refused_before_allocating() {
        let bytes = u32::MAX.to_be_bytes();
        let mut reader = &bytes[..];
        let mut out = Vec::new();
        let result = futures_lite::future::block_on(read(&mut reader, 1024, &mut out));
        assert!(matches!(result, Err(FrameError::TooLarge { len, max: 1024 }) if len == u32::MAX as usize));
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_an_error() {
        let bytes = [0, 0, 0, 9, b'x'];
        let mut reader = &bytes[..];
        let mut out = Vec::new();
        assert!(futures_lite::future::block_on(read(&mut reader, 1024, &mut out)).is_err());
    }
}
