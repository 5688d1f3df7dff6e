//! LEB128 integers (seven bits a byte, the high bit saying another byte follows), for the packed
//! lists that hold tens of millions of small numbers.

/// The most bytes an integer takes: 64 bits, seven to a byte.
pub(crate) const BYTES_MAX: usize = 10;

/// Appends `value` to `bytes`, a byte at a time: most values take one to three, and a copy of
/// a few bytes from [`write`]'s buffer cost a call to `memcpy` each.
pub(crate) fn put(bytes: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return;
        }
        bytes.push(low | 0x80);
    }
}

/// Writes `value` at the start of `bytes`, which must have room for it, and returns how many
/// bytes it took.
pub(crate) fn write(bytes: &mut [u8], mut value: u64) -> usize {
    let mut len = 0;
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes[len] = low;
            return len + 1;
        }
        bytes[len] = low | 0x80;
        len += 1;
    }
}

/// Reads the integer at the start of `bytes` and moves past it: `None` when the bytes end
/// inside it or it does not fit in 64 bits.
pub(crate) fn take(bytes: &mut &[u8]) -> Option<u64> {
    // Most numbers in the packed lists are below 128: one byte, read without the loop.
    if let [byte @ 0..=0x7f, rest @ ..] = *bytes {
        *bytes = rest;
        return Some(u64::from(*byte));
    }
    take_long(bytes)
}

fn take_long(bytes: &mut &[u8]) -> Option<u64> {
    // Next most are below 2^14, as the gaps between a funding's postings mostly are: two bytes.
    if let [low @ 0x80..=0xff, high @ 0..=0x7f, rest @ ..] = *bytes {
        *bytes = rest;
        return Some(u64::from(*low & 0x7f) | u64::from(*high) << 7);
    }
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        if shift > 63 {
            return None;
        }
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
    }
}

/// Maps a signed number to an unsigned one small in size for small magnitudes either side of
/// zero: 0, -1, 1, -2 become 0, 1, 2, 3.
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The signed number [`zigzag`] mapped.
pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_values_take_one_byte_and_the_largest_ten() {
        let mut bytes = Vec::new();
        for value in [0, 127, 128, u64::MAX] {
            put(&mut bytes, value);
        }
        assert_eq!(bytes.len(), 1 + 1 + 2 + 10);
        let written = |value| write(&mut [0; BYTES_MAX], value);
        assert_eq!([0, 127, 128, u64::MAX].map(written), [1, 1, 2, 10]);
        let mut rest = bytes.as_slice();
        let read: Vec<u64> = std::iter::from_fn(|| take(&mut rest)).collect();
        assert_eq!(read, [0, 127, 128, u64::MAX]);
    }

    #[test]
    fn cut_short_or_too_long_is_refused() {
        assert_eq!(take(&mut &[][..]), None);
        assert_eq!(take(&mut &[0x80u8][..]), None);
        assert_eq!(take(&mut &[0xffu8; 10][..]), None);
        let mut too_wide = vec![0xffu8; 9];
        too_wide.push(0x02);
        assert_eq!(take(&mut too_wide.as_slice()), None);
    }

    #[test]
    fn zigzag_keeps_small_magnitudes_small() {
        assert_eq!([0, -1, 1, -2, 2].map(zigzag), [0, 1, 2, 3, 4]);
        assert_eq!(unzigzag(zigzag(i64::MIN)), i64::MIN);
        assert_eq!(unzigzag(zigzag(i64::MAX)), i64::MAX);
    }

    proptest! {
        #[test]
        fn every_value_reads_back(
            values in prop::collection::vec(prop_oneof![0u64..300, any::<u64>()], 0..50),
            signed in any::<i64>(),
        ) {
            let mut bytes = Vec::new();
            for value in &values {
                put(&mut bytes, *value);
            }
            let mut rest = bytes.as_slice();
            let read: Vec<u64> = std::iter::from_fn(|| take(&mut rest)).collect();
            prop_assert_eq!(read, values.clone());
            prop_assert_eq!(unzigzag(zigzag(signed)), signed);
            let written = values.iter().map(|v| write(&mut [0; BYTES_MAX], *v));
            prop_assert_eq!(written.sum::<usize>(), bytes.len());
        }
    }
}
