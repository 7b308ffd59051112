//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! Owns only framing state: it hands back the data bytes as sub-slices of the caller's input and
//! never buffers or allocates. Promises: never panics, does constant work per input byte outside
//! chunk data, bounds the chunk-size line and the trailer section, and is strict about CRLF so a
//! front proxy and this server cannot disagree on where a chunk ends (request smuggling).

use thiserror::Error;

/// Longest chunk-size line we accept, extensions included (§7.1.1 lets us bound it).
pub const MAX_CHUNK_LINE: usize = 1024;
/// Largest trailer section we read (and discard; §7.1.2 lets us ignore trailer fields).
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// Why a chunked body was refused; every case maps to 400 Bad Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChunkedError {
    #[error("chunk size is not a hexadecimal number")]
    BadSize,
    #[error("chunk size does not fit in 64 bits")]
    SizeOverflow,
    #[error("chunk-size line longer than {MAX_CHUNK_LINE} bytes")]
    LineTooLong,
    #[error("chunk framing is missing a CRLF")]
    MissingCrlf,
    #[error("control character inside a chunk extension or trailer")]
    BadByte,
    #[error("trailer section longer than {MAX_TRAILER_BYTES} bytes")]
    TrailerTooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of the chunk size.
    Size,
    /// After the size: whitespace and `;ext` up to CR.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerLineStart,
    TrailerLine,
    TrailerLineLf,
    FinalLf,
    Done,
}

/// Decoder state for one chunked message body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the current chunk while reading it, then bytes of it still to come.
    size: u64,
    digits: usize,
    line_len: usize,
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder { state: State::Size, size: 0, digits: 0, line_len: 0, trailer_bytes: 0 }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`. Returns how many bytes were consumed and the body data found among
    /// them (a sub-slice of `input`). Call again with the rest until everything is consumed or
    /// [`is_done`](Self::is_done); bytes after the end of the body are left unconsumed.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8]), ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                let take = usize::try_from(self.size).unwrap_or(usize::MAX).min(input.len() - i);
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                return Ok((i + take, &input[i..i + take]));
            }
            if self.state == State::Done {
                break;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok((i, &[]))
    }

    /// Advances the framing state by one byte (never called in `Data` or `Done`).
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        match self.state {
            State::Size | State::Extension => {
                self.line_len += 1;
                if self.line_len > MAX_CHUNK_LINE {
                    return Err(ChunkedError::LineTooLong);
                }
                self.size_line_byte(b)?;
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingCrlf);
                }
                self.line_len = 0;
                self.digits = 0;
                self.state = if self.size == 0 { State::TrailerLineStart } else { State::Data };
            }
            State::DataCr => self.state = expect(b, b'\r', State::DataLf)?,
            State::DataLf => self.state = expect(b, b'\n', State::Size)?,
            State::TrailerLineStart | State::TrailerLine => {
                if self.state == State::TrailerLineStart && b == b'\r' {
                    self.state = State::FinalLf;
                    return Ok(());
                }
                self.trailer_bytes += 1;
                if self.trailer_bytes > MAX_TRAILER_BYTES {
                    return Err(ChunkedError::TrailerTooLong);
                }
                self.state = match b {
                    b'\r' => State::TrailerLineLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => State::TrailerLine,
                    _ => return Err(ChunkedError::BadByte),
                };
            }
            State::TrailerLineLf => self.state = expect(b, b'\n', State::TrailerLineStart)?,
            State::FinalLf => self.state = expect(b, b'\n', State::Done)?,
            State::Data | State::Done => {}
        }
        Ok(())
    }

    fn size_line_byte(&mut self, b: u8) -> Result<(), ChunkedError> {
        match (self.state, b) {
            (State::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                let digit = (b as char).to_digit(16).unwrap_or(0);
                // Leading zeros are legal and must not count toward overflow.
                if self.size == 0 && digit == 0 {
                    self.digits = self.digits.max(1);
                    return Ok(());
                }
                self.digits += 1;
                if self.size > u64::MAX >> 4 {
                    return Err(ChunkedError::SizeOverflow);
                }
                self.size = (self.size << 4) | u64::from(digit);
            }
            (_, b'\r') if self.digits > 0 => self.state = State::SizeLf,
            (_, b'\r') => return Err(ChunkedError::BadSize),
            (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => self.state = State::Extension,
            (State::Size, _) => return Err(ChunkedError::BadSize),
            (State::Extension, b'\t' | b' '..=b'~' | 0x80..=0xff) => {}
            (_, _) => return Err(ChunkedError::BadByte),
        }
        Ok(())
    }
}

fn expect(b: u8, want: u8, next: State) -> Result<State, ChunkedError> {
    if b == want {
        Ok(next)
    } else {
        Err(ChunkedError::MissingCrlf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns (data, unconsumed tail).
    fn run(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), ChunkedError> {
        let mut dec = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut pos = 0;
        while pos < input.len() && !dec.is_done() {
            let end = (pos + step).min(input.len());
            let (n, chunk) = dec.decode(&input[pos..end])?;
            data.extend_from_slice(chunk);
            pos += n;
            if n == 0 {
                break;
            }
        }
        assert!(dec.is_done(), "decoder not done after {pos} of {} bytes", input.len());
        Ok((data, input[pos..].to_vec()))
    }

    #[test]
    fn decodes_at_every_split() {
        let body = b"5\r\nhello\r\n0a;name=val\r\n0123456789\r\n000\r\nX-T: 1\r\n\r\nGET /";
        for step in 1..body.len() {
            let (data, rest) = run(body, step).unwrap();
            assert_eq!(data, b"hello0123456789");
            assert_eq!(rest, b"GET /");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        let cases: [(&[u8], ChunkedError); 8] = [
            (b"x\r\n", ChunkedError::BadSize),
            (b"\r\n", ChunkedError::BadSize),
            (b"-1\r\n", ChunkedError::BadSize),
            (b"5\nhello\r\n0\r\n\r\n", ChunkedError::BadSize),
            (b"5\r\nhelloXX0\r\n\r\n", ChunkedError::MissingCrlf),
            (b"10000000000000000\r\n", ChunkedError::SizeOverflow),
            (b"1;a\x00b\r\n", ChunkedError::BadByte),
            (b"0\r\nX: \x01\r\n\r\n", ChunkedError::BadByte),
        ];
        for (input, want) in cases {
            let mut dec = ChunkedDecoder::new();
            let mut pos = 0;
            let err = loop {
                match dec.decode(&input[pos..]) {
                    Ok((n, _)) if n > 0 => pos += n,
                    Ok(_) => panic!("no error for {input:?}"),
                    Err(e) => break e,
                }
            };
            assert_eq!(err, want, "{input:?}");
        }
    }

    #[test]
    fn leading_zeros_do_not_overflow() {
        let (data, _) = run(b"00000000000000000000001\r\nA\r\n0\r\n\r\n", 3).unwrap();
        assert_eq!(data, b"A");
    }

    #[test]
    fn bounds_extension_and_trailer() {
        let mut line = b"1;".to_vec();
        line.resize(MAX_CHUNK_LINE + 10, b'a');
        assert_eq!(ChunkedDecoder::new().decode(&line).unwrap_err(), ChunkedError::LineTooLong);
        let mut trailer = b"0\r\n".to_vec();
        for _ in 0..MAX_TRAILER_BYTES {
            trailer.extend_from_slice(b"X: y\r\n");
        }
        assert_eq!(ChunkedDecoder::new().decode(&trailer).unwrap_err(), ChunkedError::TrailerTooLong);
    }
}
