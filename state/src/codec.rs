//! Order-preserving, prefix-free key encoding for RocksDB.
//!
//! A key is written with every `0x00` byte escaped as `0x00 0xFF` and terminated by
//! `0x00 0x00`. The terminator sorts below any escaped or ordinary byte, so byte order of
//! encoded keys equals the byte order of the raw keys, and no encoded key is a prefix of
//! another. A window key appends the window start as a big-endian `i64` with its sign bit
//! flipped, which makes negative starts sort before positive ones. One key's windows are
//! therefore contiguous and ordered by start.

use crate::error::StateError;

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x00;

/// Appends the escaped, terminated form of `key` to `out`.
pub fn encode_key_into(key: &[u8], out: &mut Vec<u8>) {
    out.reserve(key.len() + 2);
    for &byte in key {
        out.push(byte);
        if byte == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.push(ESCAPE);
    out.push(TERMINATOR);
}

/// Encodes a table key.
pub fn encode_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    encode_key_into(key, &mut out);
    out
}

/// Encodes a window key: the escaped key followed by the order-preserving window start.
pub fn encode_window_key(key: &[u8], window_start: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 10);
    encode_key_into(key, &mut out);
    out.extend_from_slice(&encode_i64(window_start));
    out
}

/// Maps an `i64` to 8 bytes whose unsigned big-endian order is the signed order.
pub fn encode_i64(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`encode_i64`].
pub fn decode_i64(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// Decodes an escaped key at the start of `encoded`; returns the key and the rest.
pub fn decode_key(encoded: &[u8]) -> Result<(Vec<u8>, &[u8]), StateError> {
    let mut key = Vec::with_capacity(encoded.len());
    let mut index = 0;
    while index < encoded.len() {
        let byte = encoded[index];
        if byte != ESCAPE {
            key.push(byte);
            index += 1;
            continue;
        }
        match encoded.get(index + 1) {
            Some(&TERMINATOR) => return Ok((key, &encoded[index + 2..])),
            Some(&ESCAPED_ZERO) => {
                key.push(0);
                index += 2;
            }
            _ => return Err(StateError::corrupt("key has a bad escape sequence")),
        }
    }
    Err(StateError::corrupt("key has no terminator"))
}

/// Decodes a window key into its key and window start.
pub fn decode_window_key(encoded: &[u8]) -> Result<(Vec<u8>, i64), StateError> {
    let (key, rest) = decode_key(encoded)?;
    let start: [u8; 8] = rest
        .try_into()
        .map_err(|_| StateError::corrupt("window key does not end with an 8-byte start"))?;
    Ok((key, decode_i64(start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_keys_with_zero_bytes() {
        let key = b"a\0b\0\0";
        let encoded = encode_window_key(key, -42);
        assert_eq!(decode_window_key(&encoded).unwrap(), (key.to_vec(), -42));
    }

    #[test]
    fn rejects_truncated_keys() {
        assert!(decode_key(b"abc").is_err());
        assert!(decode_window_key(&encode_key(b"abc")).is_err());
    }

    proptest! {
        #[test]
        fn byte_order_equals_key_then_start_order(
            a in proptest::collection::vec(any::<u8>(), 0..6), sa in any::<i64>(),
            b in proptest::collection::vec(any::<u8>(), 0..6), sb in any::<i64>(),
        ) {
            let logical = (&a, sa).cmp(&(&b, sb));
            let bytes = encode_window_key(&a, sa).cmp(&encode_window_key(&b, sb));
            prop_assert_eq!(logical, bytes);
        }

        #[test]
        fn encoded_keys_are_prefix_free(
            a in proptest::collection::vec(any::<u8>(), 0..6),
            b in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            prop_assume!(a != b);
            let (ea, eb) = (encode_key(&a), encode_key(&b));
            prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
        }

        #[test]
        fn window_keys_round_trip(key in proptest::collection::vec(any::<u8>(), 0..8), start in any::<i64>()) {
            prop_assert_eq!(decode_window_key(&encode_window_key(&key, start)).unwrap(), (key, start));
        }
    }
}
