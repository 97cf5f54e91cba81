//! The compact binary encoding of an observation's numeric values (the `vals` column).
//!
//! A value list is a sequence of entries, each a LEB128 varint *tag* `(name_id << 2) | kind`
//! followed by the value in one of four kinds, chosen per value as the first that round-trips
//! **bit-exactly**:
//!
//! | kind | meaning | payload |
//! |---|---|---|
//! | 0 | an integer (`200`, `1234`) | zigzag varint of the value |
//! | 1 | a multiple of 0.001 (`12.345` ms, i.e. 1 µs precision for millisecond latencies) | zigzag varint of `value × 1000` |
//! | 2 | a multiple of 0.000001 | zigzag varint of `value × 1_000_000` |
//! | 3 | anything else (`NaN`, `-0.0`, `1/3`, huge values) | the 8 bytes of the `f64`, little-endian |
//!
//! The encoder checks each candidate by decoding it again, so every value comes back exactly
//! as stored: there is no precision loss, only a size that depends on the value. Latencies
//! measured in milliseconds and rounded to 0.001 (1 µs) take 2–3 bytes, status codes and
//! byte counts 2–3 bytes, and the name id of the first 32 value names fits in the tag byte.

use crate::StoreError;

/// Integers up to this magnitude are exactly representable in an `f64`.
const EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53

const KIND_INT: u64 = 0;
const KIND_MILLI: u64 = 1;
const KIND_MICRO: u64 = 2;
const KIND_F64: u64 = 3;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, StoreError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*pos) else {
            return Err(corrupt("value list ends inside a varint"));
        };
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(corrupt("varint longer than 10 bytes in value list"))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// `value × scale` as an integer when dividing it back by `scale` gives exactly `value`.
fn scaled(value: f64, scale: f64) -> Option<i64> {
    let n = (value * scale).round();
    if !n.is_finite() || n.abs() > EXACT_INT {
        return None;
    }
    let i = n as i64;
    // Decode exactly as `decode_values` does, so a value is only accepted if it round-trips
    // (this also sends `-0.0` to the 8-byte kind: the integer 0 would come back as `+0.0`).
    let back = if scale == 1.0 {
        i as f64
    } else {
        i as f64 / scale
    };
    (back.to_bits() == value.to_bits()).then_some(i)
}

/// Appends one value with the given interned name id.
pub fn encode_value(out: &mut Vec<u8>, name_id: u64, value: f64) {
    let (kind, payload) = if let Some(n) = scaled(value, 1.0) {
        (KIND_INT, Some(n))
    } else if let Some(n) = scaled(value, 1e3) {
        (KIND_MILLI, Some(n))
    } else if let Some(n) = scaled(value, 1e6) {
        (KIND_MICRO, Some(n))
    } else {
        (KIND_F64, None)
    };
    put_varint(out, (name_id << 2) | kind);
    match payload {
        Some(n) => put_varint(out, zigzag(n)),
        None => out.extend_from_slice(&value.to_le_bytes()),
    }
}

/// Decodes a value list into `(name_id, value)` pairs in stored order.
pub fn decode_values(buf: &[u8]) -> Result<Vec<(u64, f64)>, StoreError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = get_varint(buf, &mut pos)?;
        let name_id = tag >> 2;
        let value = match tag & 3 {
            KIND_INT => unzigzag(get_varint(buf, &mut pos)?) as f64,
            KIND_MILLI => unzigzag(get_varint(buf, &mut pos)?) as f64 / 1e3,
            KIND_MICRO => unzigzag(get_varint(buf, &mut pos)?) as f64 / 1e6,
            _ => {
                let end = pos + 8;
                let bytes: [u8; 8] = buf
                    .get(pos..end)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("value list ends inside an 8-byte float"))?;
                pos = end;
                f64::from_le_bytes(bytes)
            }
        };
        out.push((name_id, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: f64) -> (f64, usize) {
        let mut buf = Vec::new();
        encode_value(&mut buf, 5, v);
        let decoded = decode_values(&buf).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].0, 5);
        (decoded[0].1, buf.len())
    }

    #[test]
    fn every_kind_round_trips_bit_exactly() {
        let samples = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            200.0,
            12.345,
            0.001,
            -7.5,
            1234.567,
            0.000_123,
            1.0 / 3.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            9_007_199_254_740_993.0,
            -9_007_199_254_740_992.0,
            1e300,
        ];
        for v in samples {
            let (back, _) = round_trip(v);
            assert_eq!(back.to_bits(), v.to_bits(), "{v} did not round-trip");
        }
    }

    #[test]
    fn millisecond_latencies_with_microsecond_precision_are_small() {
        // Every multiple of 0.001 keeps its exact value; below ~1 s it takes at most 4 bytes
        // with its tag, up to ~134 s at most 5.
        for micros in (0..134_000_000i64).step_by(997) {
            let v = (micros as f64) / 1000.0;
            let (back, len) = round_trip(v);
            assert_eq!(back.to_bits(), v.to_bits());
            let limit = if micros < 1_048_576 { 4 } else { 5 };
            assert!(len <= limit, "{v} took {len} bytes");
        }
        assert_eq!(round_trip(200.0).1, 3);
        assert_eq!(round_trip(12.345).1, 4);
        assert_eq!(round_trip(0.5).1, 3);
        assert_eq!(round_trip(1.0 / 3.0).1, 9);
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX / 2, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos).unwrap(), v);
            assert_eq!(pos, buf.len());
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn truncated_or_garbage_lists_are_corrupt_not_panics() {
        let mut buf = Vec::new();
        encode_value(&mut buf, 1, 1.0 / 3.0);
        for cut in 0..buf.len() {
            let r = decode_values(&buf[..cut]);
            if cut == 0 {
                assert!(r.unwrap().is_empty());
            } else {
                assert!(matches!(r, Err(StoreError::Corrupt(_))), "cut {cut}");
            }
        }
        assert!(matches!(
            decode_values(&[0xff; 11]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_values(&[0x80]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
