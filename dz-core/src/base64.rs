//! Base64 (the standard alphabet, with padding) for key material in JSON, and for the sealed
//! bytes runtimes put in their frames. Decoding is strict: only canonical text is accepted, so
//! one byte string has one spelling.
//!
//! Public for runtimes only (hidden from the docs); not part of dz's interface.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as base64 text.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    encode_into(bytes, &mut out);
    // Only ASCII from the alphabet and `=` was written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `bytes` as base64 text (ASCII) to `out`.
pub fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes one quad of text into its bytes, of which `wanted` (1 to 3) are real; the rest of the
/// quad must be padding, and the unused bits zero.
fn quad_bytes(quad: &[u8], wanted: usize) -> Option<[u8; 3]> {
    let mut n = 0u32;
    for (i, &c) in quad.iter().enumerate() {
        let v = if i <= wanted {
            value(c)?
        } else if c == b'=' {
            0
        } else {
            return None;
        };
        n |= v << (18 - 6 * i);
    }
    let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    // Bits beyond the last byte must be zero, or two texts would spell the same bytes.
    if bytes[wanted..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(bytes)
}

/// The bytes spelled by `text`, of any length, or `None` if it is not canonical base64.
pub fn decode_vec(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 != 0 {
        return None;
    }
    let padding = text.iter().rev().take_while(|&&c| c == b'=').count();
    if padding > 2 {
        return None;
    }
    let len = text.len() / 4 * 3 - padding;
    let mut out = Vec::with_capacity(len);
    for quad in text.chunks(4) {
        let wanted = (len - out.len()).min(3);
        out.extend_from_slice(&quad_bytes(quad, wanted)?[..wanted]);
    }
    Some(out)
}

/// The `N` bytes spelled by `text`, or `None` if it is not their canonical base64.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    decode_vec(text.as_bytes())?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_texts() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"foob"), "Zm9vYg==");
        assert_eq!(decode::<4>("Zm9vYg=="), Some(*b"foob"));
        assert_eq!(decode::<5>("Zm9vYmE="), Some(*b"fooba"));
        assert_eq!(decode::<6>("Zm9vYmFy"), Some(*b"foobar"));
    }

    #[test]
    fn round_trips_and_refuses_what_is_not_canonical() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37 + 11) as u8);
        let text = encode(&bytes);
        assert_eq!(text.len(), 44);
        assert_eq!(decode::<32>(&text), Some(bytes));
        assert_eq!(decode::<32>(&text[..43]), None, "too short");
        assert_eq!(decode::<31>(&text), None, "another length");
        let mut bad = text.clone().into_bytes();
        bad[42] = b'B'; // non-zero bits after the last byte
        assert_eq!(decode::<32>(std::str::from_utf8(&bad).unwrap()), None);
        bad[42] = b'*';
        assert_eq!(decode::<32>(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(decode::<1>("Zg=A"), None, "padding in the wrong place");
    }

    #[test]
    fn byte_strings_of_any_length_round_trip() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 91 + 7) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(decode_vec(text.as_bytes()), Some(bytes), "{len}");
        }
        for bad in [&b"Zg="[..], b"Zg=A", b"Z===", b"Zh==", b"Zm9v*mFy", b"Zg==Zg=="] {
            assert_eq!(decode_vec(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
