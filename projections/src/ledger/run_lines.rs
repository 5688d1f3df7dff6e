//! A payment run's lines packed into bytes: a national year's runs hold millions of lines, and
//! as records with a list of positions each took about a hundred bytes.

use followfund_contracts::events::{PaymentLine, PaymentLineKind};
use followfund_contracts::{Money, OdsCode};
use serde::de;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::varint;

/// Lines in the order recorded, each written as: the provider's place in the run's list of
/// providers, the prescription id's sixteen bytes, the count of positions shifted up by one
/// above the kind (1 for a recovery), the amount in pence, then each position as its change
/// from the one before (zigzag, from zero). A line of four positions takes about 35 bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunLines {
    providers: Vec<OdsCode>,
    bytes: Vec<u8>,
    count: u32,
}

impl RunLines {
    /// Appends a line, whose amount must be positive pence: the log's validation sees to that.
    pub fn push(&mut self, line: &PaymentLine) {
        let amount_pence = line
            .amount
            .to_pence()
            .filter(|pence| *pence >= 0)
            .expect("a line's amount is positive pence");
        let provider = self.provider_place(&line.provider);
        let bytes = &mut self.bytes;
        varint::put(bytes, provider);
        bytes.extend_from_slice(line.prescription_id.as_bytes());
        let kind = match line.kind {
            PaymentLineKind::Payment => 0,
            PaymentLineKind::Recovery => 1,
        };
        varint::put(bytes, (line.positions.len() as u64) << 1 | kind);
        varint::put(bytes, amount_pence.unsigned_abs());
        let mut last = 0u64;
        for position in &line.positions {
            varint::put(bytes, varint::zigzag(position.wrapping_sub(last) as i64));
            last = *position;
        }
        self.count = self.count.checked_add(1).expect("fewer than 2^32 lines");
    }

    /// The place of `provider` in the list, adding it if new. Lines come in provider order, so
    /// the last provider is tried first.
    fn provider_place(&mut self, provider: &OdsCode) -> u64 {
        let place = match self.providers.last() {
            Some(last) if last == provider => self.providers.len() - 1,
            _ => match self.providers.iter().position(|known| known == provider) {
                Some(place) => place,
                None => {
                    self.providers.push(provider.clone());
                    self.providers.len() - 1
                }
            },
        };
        place as u64
    }

    /// Gives back the room the lists grew into while a part's lines were added: a national
    /// year's runs hold about a hundred megabytes of lines.
    pub(super) fn fit(&mut self) {
        crate::fit::fit(&mut self.bytes);
        crate::fit::fit(&mut self.providers);
    }

    /// How many lines there are.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The lines, in the order recorded.
    pub fn iter(&self) -> impl Iterator<Item = PaymentLine> + '_ {
        self.read(None)
    }

    /// The lines paying or recovering from `provider`, in the order recorded; the others are
    /// stepped over without being decoded.
    pub fn of_provider(&self, provider: &OdsCode) -> impl Iterator<Item = PaymentLine> + '_ {
        let place = self.providers.iter().position(|known| known == provider);
        // A provider the run never paid matches no line: its place is past the list.
        self.read(Some(place.unwrap_or(self.providers.len())))
    }

    fn read(&self, only: Option<usize>) -> impl Iterator<Item = PaymentLine> + '_ {
        let reader = Reader {
            providers: &self.providers,
            rest: &self.bytes,
            only,
        };
        reader.map(|line| line.expect("lines were checked when made or read"))
    }

    /// Rebuilds the lines from their parts, refusing bytes that do not decode to lines: a
    /// snapshot is checked, not trusted.
    fn from_parts(providers: Vec<OdsCode>, bytes: Vec<u8>) -> Result<RunLines, &'static str> {
        // Every line is checked and stepped over, none built: a restart reads a year's runs.
        let mut reader = Reader {
            providers: &providers,
            rest: &bytes,
            only: Some(NO_PROVIDER),
        };
        let mut count = 0u32;
        while !reader.rest.is_empty() {
            reader.line()?;
            count = count.checked_add(1).ok_or("more than 2^32 lines")?;
        }
        Ok(RunLines {
            providers,
            bytes,
            count,
        })
    }
}

impl FromIterator<PaymentLine> for RunLines {
    fn from_iter<I: IntoIterator<Item = PaymentLine>>(lines: I) -> RunLines {
        let mut packed = RunLines::default();
        for line in lines {
            packed.push(&line);
        }
        packed
    }
}

/// A provider place no line has, for a reader that only checks lines.
const NO_PROVIDER: usize = usize::MAX;

/// Decodes lines one at a time, all of them or only those of the provider at place `only`.
struct Reader<'a> {
    providers: &'a [OdsCode],
    rest: &'a [u8],
    only: Option<usize>,
}

impl Iterator for Reader<'_> {
    type Item = Result<PaymentLine, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            match self.line() {
                Ok(None) => continue,
                Ok(Some(line)) => return Some(Ok(line)),
                Err(refused) => return Some(Err(refused)),
            }
        }
        None
    }
}

impl Reader<'_> {
    /// The next line, or `None` when it is another provider's and was stepped over.
    fn line(&mut self) -> Result<Option<PaymentLine>, &'static str> {
        let place = usize::try_from(self.number()?).map_err(|_| "no provider at that place")?;
        let provider = self
            .providers
            .get(place)
            .ok_or("no provider at that place")?;
        let (id, rest) = self
            .rest
            .split_first_chunk::<16>()
            .ok_or("a line is cut short")?;
        self.rest = rest;
        let prescription_id = Uuid::from_bytes(*id);
        let count_and_kind = self.number()?;
        let kind = match count_and_kind & 1 {
            0 => PaymentLineKind::Payment,
            _ => PaymentLineKind::Recovery,
        };
        let amount_pence = i64::try_from(self.number()?).map_err(|_| "an amount is too large")?;
        let count = count_and_kind >> 1;
        // Each position takes a byte at least, so a count beyond the bytes left is refused
        // before anything is allocated for it.
        if count > self.rest.len() as u64 {
            return Err("a line is cut short");
        }
        if self.only.is_some_and(|only| only != place) {
            for _ in 0..count {
                self.number()?;
            }
            return Ok(None);
        }
        let mut positions = Vec::with_capacity(count as usize);
        let mut last = 0u64;
        for _ in 0..count {
            last = last.wrapping_add(varint::unzigzag(self.number()?) as u64);
            positions.push(last);
        }
        Ok(Some(PaymentLine {
            provider: provider.clone(),
            prescription_id,
            kind,
            amount: Money::from_pence(amount_pence),
            positions,
        }))
    }

    fn number(&mut self) -> Result<u64, &'static str> {
        varint::take(&mut self.rest).ok_or("a line is cut short or a number too long")
    }
}

/// How the lines are read back from a snapshot: the providers by code, the rest as bytes.
#[derive(Deserialize)]
struct Saved {
    providers: Vec<OdsCode>,
    #[serde(deserialize_with = "crate::compact::byte_buf")]
    bytes: Vec<u8>,
}

/// The lines' bytes, saved as bytes rather than a list of numbers.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for RunLines {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut saved = serializer.serialize_struct("Saved", 2)?;
        saved.serialize_field("providers", &self.providers)?;
        saved.serialize_field("bytes", &Bytes(&self.bytes))?;
        saved.end()
    }
}

impl<'de> Deserialize<'de> for RunLines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RunLines, D::Error> {
        let saved = Saved::deserialize(deserializer)?;
        RunLines::from_parts(saved.providers, saved.bytes).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn line(
        provider: &str,
        id: u128,
        kind: PaymentLineKind,
        pence: i64,
        positions: &[u64],
    ) -> PaymentLine {
        PaymentLine {
            provider: OdsCode::parse(provider).unwrap(),
            prescription_id: Uuid::from_u128(id),
            kind,
            amount: Money::from_pence(pence),
            positions: positions.to_vec(),
        }
    }

    #[test]
    fn a_fitted_list_keeps_its_lines_and_no_spare_room() {
        let mut lines = RunLines::default();
        for id in 0..100 {
            lines.push(&line(
                "VCS01",
                id,
                PaymentLineKind::Payment,
                2_500,
                &[1_000 + id as u64],
            ));
        }
        let before: Vec<PaymentLine> = lines.iter().collect();
        assert!(lines.bytes.capacity() > lines.bytes.len());
        lines.fit();
        assert_eq!(lines.bytes.capacity(), lines.bytes.len());
        assert_eq!(lines.iter().collect::<Vec<_>>(), before);
    }

    #[test]
    fn a_line_of_four_sessions_takes_about_a_third_of_a_record() {
        let lines: RunLines = [line(
            "VCS01",
            7,
            PaymentLineKind::Payment,
            6_000,
            &[18_000_000, 18_100_000, 18_200_000, 18_300_000],
        )]
        .into_iter()
        .collect();
        // Provider, id, count and kind, £60.00, the first position, three gaps of 100,000.
        assert_eq!(lines.bytes.len(), 1 + 16 + 1 + 2 + 4 + 3 * 3);
        assert_eq!(lines.providers.len(), 1);
    }

    #[test]
    fn providers_are_listed_once_and_lines_read_back_in_order() {
        let made = vec![
            line("VCS01", 1, PaymentLineKind::Payment, 2_500, &[12, 13]),
            line("VCS02", 2, PaymentLineKind::Recovery, 1_500, &[40]),
            line("VCS01", 3, PaymentLineKind::Payment, 0, &[]),
        ];
        let lines: RunLines = made.iter().cloned().collect();
        assert_eq!(lines.providers.len(), 2);
        assert_eq!((lines.len(), lines.is_empty()), (3, false));
        assert_eq!(lines.iter().collect::<Vec<_>>(), made);
        let of_first: Vec<_> = lines.of_provider(&made[0].provider).collect();
        assert_eq!(of_first, [made[0].clone(), made[2].clone()]);
        let unpaid = OdsCode::parse("VCS99").unwrap();
        assert_eq!(lines.of_provider(&unpaid).count(), 0);
    }

    #[test]
    fn bytes_that_do_not_decode_to_lines_are_refused() {
        let lines: RunLines = [line("VCS01", 1, PaymentLineKind::Payment, 2_500, &[12, 13])]
            .into_iter()
            .collect();
        let (providers, bytes) = (lines.providers.clone(), lines.bytes.clone());
        let cut = bytes[..bytes.len() - 1].to_vec();
        assert_eq!(
            RunLines::from_parts(providers.clone(), cut).unwrap_err(),
            "a line is cut short"
        );
        let mut stranger = bytes.clone();
        stranger[0] = 5;
        assert_eq!(
            RunLines::from_parts(providers.clone(), stranger).unwrap_err(),
            "no provider at that place"
        );
        // Eight positions claimed where the bytes hold two.
        let mut too_many = bytes.clone();
        too_many[17] = 8 << 1;
        assert_eq!(
            RunLines::from_parts(providers.clone(), too_many).unwrap_err(),
            "a line is cut short"
        );
        assert_eq!(RunLines::from_parts(providers, bytes).unwrap(), lines);
    }

    proptest! {
        #[test]
        fn lines_read_back_as_pushed_and_from_a_snapshot(
            made in prop::collection::vec(
                (0usize..4, any::<u128>(), any::<bool>(), 0i64..i64::MAX, prop::collection::vec(any::<u64>(), 0..6)),
                0..30,
            ),
        ) {
            let made: Vec<PaymentLine> = made
                .into_iter()
                .map(|(provider, id, recovery, pence, positions)| {
                    let kind = if recovery { PaymentLineKind::Recovery } else { PaymentLineKind::Payment };
                    line(["VCS01", "VCS02", "ANC01", "Q72"][provider], id, kind, pence, &positions)
                })
                .collect();
            let lines: RunLines = made.iter().cloned().collect();
            prop_assert_eq!(lines.iter().collect::<Vec<_>>(), made);
            let snapshot = rmp_serde::to_vec(&lines).unwrap();
            prop_assert_eq!(rmp_serde::from_slice::<RunLines>(&snapshot).unwrap(), lines);
        }
    }
}
