//! MessagePack read straight from a byte slice: the integers, byte strings, text and lists a
//! fold block is made of. `rmp` reads through `std::io::Read`, and a replay spent more on each
//! event's four header integers that way than on the event's payload. Every reader gives `None`
//! for anything it does not expect.

/// The bytes not yet read.
#[derive(Debug)]
pub(super) struct Pack<'a> {
    rest: &'a [u8],
}

impl<'a> Pack<'a> {
    /// Reads `bytes` from their start.
    pub(super) fn new(bytes: &'a [u8]) -> Pack<'a> {
        Pack { rest: bytes }
    }

    /// How many bytes are not yet read.
    pub(super) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// An integer in any of MessagePack's forms; none for an unsigned one above `i64::MAX`.
    pub(super) fn int(&mut self) -> Option<i64> {
        let marker = self.byte()?;
        match marker {
            0x00..=0x7f => Some(i64::from(marker)),
            0xe0..=0xff => Some(i64::from(marker as i8)),
            0xcc => Some(i64::from(u8::from_be_bytes(self.array()?))),
            0xcd => Some(i64::from(u16::from_be_bytes(self.array()?))),
            0xce => Some(i64::from(u32::from_be_bytes(self.array()?))),
            0xcf => i64::try_from(u64::from_be_bytes(self.array()?)).ok(),
            0xd0 => Some(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Some(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Some(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Some(i64::from_be_bytes(self.array()?)),
            _ => None,
        }
    }

    /// A whole number that fits `T`, such as a count or a position.
    pub(super) fn number<T: TryFrom<i64>>(&mut self) -> Option<T> {
        T::try_from(self.int()?).ok()
    }

    /// A byte string.
    pub(super) fn bin(&mut self) -> Option<&'a [u8]> {
        let len = match self.byte()? {
            0xc4 => usize::from(u8::from_be_bytes(self.array()?)),
            0xc5 => usize::from(u16::from_be_bytes(self.array()?)),
            0xc6 => usize::try_from(u32::from_be_bytes(self.array()?)).ok()?,
            _ => return None,
        };
        self.take(len)
    }

    /// A text string.
    pub(super) fn str(&mut self) -> Option<&'a str> {
        let len = match self.byte()? {
            marker @ 0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => usize::from(u8::from_be_bytes(self.array()?)),
            0xda => usize::from(u16::from_be_bytes(self.array()?)),
            0xdb => usize::try_from(u32::from_be_bytes(self.array()?)).ok()?,
            _ => return None,
        };
        std::str::from_utf8(self.take(len)?).ok()
    }

    /// The length of a list, whose items follow.
    pub(super) fn list(&mut self) -> Option<usize> {
        match self.byte()? {
            marker @ 0x90..=0x9f => Some(usize::from(marker & 0x0f)),
            0xdc => Some(usize::from(u16::from_be_bytes(self.array()?))),
            0xdd => usize::try_from(u32::from_be_bytes(self.array()?)).ok(),
            _ => None,
        }
    }

    fn byte(&mut self) -> Option<u8> {
        let (&byte, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(byte)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (taken, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*taken)
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.rest.len() < len {
            return None;
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn an_integer_reads_back_as_rmp_writes_it(signed: i64, unsigned in 0..=i64::MAX as u64) {
            let mut bytes = Vec::new();
            rmp::encode::write_sint(&mut bytes, signed).unwrap();
            rmp::encode::write_uint(&mut bytes, unsigned).unwrap();
            let mut pack = Pack::new(&bytes);
            prop_assert_eq!(pack.int(), Some(signed));
            prop_assert_eq!(pack.int(), Some(unsigned as i64));
            prop_assert!(pack.rest.is_empty());
        }

        #[test]
        fn strings_and_lists_read_back_as_rmp_writes_them(len in 0usize..70_000, cut in 1usize..4) {
            let text: String = (0..len).map(|n| char::from(b'a' + (n % 26) as u8)).collect();
            let mut bytes = Vec::new();
            rmp::encode::write_bin(&mut bytes, text.as_bytes()).unwrap();
            rmp::encode::write_str(&mut bytes, &text).unwrap();
            rmp::encode::write_array_len(&mut bytes, len as u32).unwrap();
            let mut pack = Pack::new(&bytes);
            prop_assert_eq!(pack.bin(), Some(text.as_bytes()));
            prop_assert_eq!(pack.str(), Some(&text[..]));
            prop_assert_eq!(pack.list(), Some(len));
            prop_assert!(pack.rest.is_empty());
            let mut short = Pack::new(&bytes[..bytes.len() - cut]);
            let read = (short.bin(), short.str(), short.list());
            prop_assert!(read.0.is_none() || read.1.is_none() || read.2.is_none());
        }
    }

    #[test]
    fn a_value_cut_short_or_of_another_kind_is_not_read() {
        for bytes in [
            &[][..],
            &[0xcd, 0x01],
            &[0xd3, 0, 0, 0],
            &[0xc0],
            &[0xa1, b'x'],
        ] {
            assert_eq!(Pack::new(bytes).int(), None, "{bytes:02x?}");
        }
        let above = [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Pack::new(&above).int(), None);
        assert_eq!(Pack::new(&[0xa2, 0xff, 0xfe]).str(), None, "not UTF-8");
        assert_eq!(Pack::new(&[0xc4, 3, 1, 2]).bin(), None);
        assert_eq!(Pack::new(&[0xc4, 1, 1]).list(), None);
    }
}
