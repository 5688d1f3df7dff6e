//! Payloads for wellbeing measures taken at baseline and follow-up, and the item counts and score
//! ranges each instrument allows.

use std::ops::RangeInclusive;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A validated wellbeing questionnaire. Item scores are recorded in the instrument's published
/// item order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Instrument {
    /// Short Warwick-Edinburgh Mental Wellbeing Scale: 7 items scored 1 to 5 (raw total 7 to 35,
    /// converted to a metric score by the published table).
    Swemwbs,
    /// Warwick-Edinburgh Mental Wellbeing Scale: 14 items scored 1 to 5 (total 14 to 70).
    Wemwbs,
    /// ONS personal wellbeing: 4 items scored 0 to 10, in the order life satisfaction,
    /// worthwhile, happiness, anxiety (anxiety is reversed: higher is worse).
    Ons4,
    /// Generalised Anxiety Disorder 7: 7 items scored 0 to 3 (total 0 to 21).
    Gad7,
    /// Patient Health Questionnaire 9: 9 items scored 0 to 3 (total 0 to 27).
    Phq9,
    /// Well-being Star: 8 domains scored 1 to 10, in the order lifestyle, looking after
    /// yourself, managing symptoms, work and volunteering, money, where you live, family and
    /// friends, feeling positive.
    WellbeingStar,
}

impl Instrument {
    /// How many item scores one measurement with this instrument holds.
    pub fn item_count(&self) -> usize {
        match self {
            Instrument::Swemwbs => 7,
            Instrument::Wemwbs => 14,
            Instrument::Ons4 => 4,
            Instrument::Gad7 => 7,
            Instrument::Phq9 => 9,
            Instrument::WellbeingStar => 8,
        }
    }

    /// The scores each item may take.
    pub fn item_range(&self) -> RangeInclusive<u8> {
        match self {
            Instrument::Swemwbs | Instrument::Wemwbs => 1..=5,
            Instrument::Ons4 => 0..=10,
            Instrument::Gad7 | Instrument::Phq9 => 0..=3,
            Instrument::WellbeingStar => 1..=10,
        }
    }

    /// The score a measurement gives, in the units outcome contracts compare: SWEMWBS's raw
    /// total converted to its metric score, WEMWBS's total, GAD-7's and PHQ-9's totals, and the
    /// Wellbeing Star's mean across its eight domains. ONS4's items are kept separate, so it has
    /// no single score. `None` also when the items do not fit the instrument.
    pub fn score(&self, item_scores: &[u8]) -> Option<Decimal> {
        let fits = item_scores.len() == self.item_count()
            && item_scores.iter().all(|s| self.item_range().contains(s));
        if !fits {
            return None;
        }
        let total: u32 = item_scores.iter().map(|s| u32::from(*s)).sum();
        match self {
            Instrument::Swemwbs => swemwbs_metric(total),
            Instrument::Wemwbs | Instrument::Gad7 | Instrument::Phq9 => Some(Decimal::from(total)),
            Instrument::WellbeingStar => Some(Decimal::from(total) / Decimal::from(8)),
            Instrument::Ons4 => None,
        }
    }

    /// How much better `follow_up` is than `baseline`: a rise for wellbeing scales, a fall for
    /// GAD-7 and PHQ-9, where a higher score means more symptoms.
    pub fn improvement(&self, baseline: Decimal, follow_up: Decimal) -> Decimal {
        match self {
            Instrument::Gad7 | Instrument::Phq9 => baseline - follow_up,
            _ => follow_up - baseline,
        }
    }

    /// The instrument's name as written in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Instrument::Swemwbs => "swemwbs",
            Instrument::Wemwbs => "wemwbs",
            Instrument::Ons4 => "ons4",
            Instrument::Gad7 => "gad7",
            Instrument::Phq9 => "phq9",
            Instrument::WellbeingStar => "wellbeing_star",
        }
    }
}

/// SWEMWBS metric scores for raw totals 7 to 35, from the Rasch conversion table published by
/// Warwick Medical School with the scale (Stewart-Brown et al., 2009), in hundredths.
const SWEMWBS_METRIC_HUNDREDTHS: [u32; 29] = [
    700, 951, 1125, 1240, 1333, 1408, 1475, 1532, 1584, 1636, 1688, 1743, 1798, 1859, 1925, 1998,
    2073, 2154, 2235, 2321, 2411, 2503, 2602, 2703, 2813, 2931, 3070, 3255, 3500,
];

/// A SWEMWBS raw total (7 to 35) as its metric score.
pub fn swemwbs_metric(raw_total: u32) -> Option<Decimal> {
    let index = usize::try_from(raw_total.checked_sub(7)?).ok()?;
    let hundredths = *SWEMWBS_METRIC_HUNDREDTHS.get(index)?;
    Some(Decimal::new(i64::from(hundredths), 2))
}

/// When in the person's journey a measure was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasureStage {
    /// Before or at the initial assessment.
    Baseline,
    /// Any later measurement; the event's `occurred_at` says how long after the baseline.
    FollowUp,
}

/// A wellbeing instrument was completed at baseline or follow-up. Outcome contracts compare
/// follow-ups with the baseline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeMeasured {
    /// The referral the measure belongs to.
    pub referral_id: Uuid,
    /// The questionnaire used.
    pub instrument: Instrument,
    /// Baseline or follow-up.
    pub stage: MeasureStage,
    /// One score per item, in the instrument's item order. How many items and which scores are
    /// allowed depend on the instrument; see the `Instrument` values.
    pub item_scores: Vec<u8>,
}

impl OutcomeMeasured {
    /// Checks the item scores against the instrument, describing what was expected if they do
    /// not fit.
    pub fn check_item_scores(&self) -> Result<(), String> {
        let expected_count = self.instrument.item_count();
        let range = self.instrument.item_range();
        let expected = format!(
            "{} expects {} item scores, each from {} to {}",
            self.instrument.as_str(),
            expected_count,
            range.start(),
            range.end()
        );
        if self.item_scores.len() != expected_count {
            return Err(format!("{expected}; got {}", self.item_scores.len()));
        }
        match self
            .item_scores
            .iter()
            .enumerate()
            .find(|(_, score)| !range.contains(score))
        {
            Some((index, score)) => Err(format!("{expected}; item {index} is {score}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(instrument: Instrument, item_scores: Vec<u8>) -> OutcomeMeasured {
        OutcomeMeasured {
            referral_id: Uuid::nil(),
            instrument,
            stage: MeasureStage::Baseline,
            item_scores,
        }
    }

    const ALL: [Instrument; 6] = [
        Instrument::Swemwbs,
        Instrument::Wemwbs,
        Instrument::Ons4,
        Instrument::Gad7,
        Instrument::Phq9,
        Instrument::WellbeingStar,
    ];

    #[test]
    fn each_instrument_accepts_its_full_range_at_its_item_count() {
        for instrument in ALL {
            let count = instrument.item_count();
            let range = instrument.item_range();
            for score in [*range.start(), *range.end()] {
                assert_eq!(
                    measured(instrument, vec![score; count]).check_item_scores(),
                    Ok(()),
                    "{instrument:?} {score}"
                );
            }
        }
    }

    #[test]
    fn each_instrument_refuses_one_item_too_few_or_too_many() {
        for instrument in ALL {
            let count = instrument.item_count();
            let score = *instrument.item_range().start();
            for wrong in [count - 1, count + 1] {
                let message = measured(instrument, vec![score; wrong])
                    .check_item_scores()
                    .unwrap_err();
                assert!(
                    message.contains(&format!("expects {count} item scores")),
                    "{message}"
                );
                assert!(message.ends_with(&format!("got {wrong}")), "{message}");
            }
        }
    }

    #[test]
    fn each_instrument_refuses_scores_just_outside_its_range() {
        for instrument in ALL {
            let count = instrument.item_count();
            let range = instrument.item_range();
            let mut outside = vec![range.end() + 1];
            if *range.start() > 0 {
                outside.push(range.start() - 1);
            }
            for bad in outside {
                let mut scores = vec![*range.start(); count];
                scores[count - 1] = bad;
                let message = measured(instrument, scores)
                    .check_item_scores()
                    .unwrap_err();
                assert!(
                    message.ends_with(&format!("item {} is {bad}", count - 1)),
                    "{message}"
                );
            }
        }
    }

    /// Raw 7 and 35 are the ends; 21 (seven items of 3) converts to 19.25 and 28 to 25.03.
    #[test]
    fn a_swemwbs_raw_total_converts_through_the_table() {
        let metric = |items: [u8; 7]| Instrument::Swemwbs.score(&items).unwrap().to_string();
        assert_eq!(metric([1; 7]), "7.00");
        assert_eq!(metric([3; 7]), "19.25");
        assert_eq!(metric([4; 7]), "25.03");
        assert_eq!(metric([5; 7]), "35.00");
        assert_eq!(metric([3, 3, 3, 3, 3, 3, 4]), "19.98");
        assert_eq!(swemwbs_metric(6), None);
        assert_eq!(swemwbs_metric(36), None);
        assert_eq!(Instrument::Ons4.score(&[5, 5, 5, 5]), None);
        assert_eq!(
            Instrument::WellbeingStar
                .score(&[4, 5, 6, 7, 4, 5, 6, 7])
                .unwrap()
                .to_string(),
            "5.50"
        );
        assert_eq!(
            Instrument::Phq9.improvement(Decimal::from(15), Decimal::from(9)),
            Decimal::from(6)
        );
    }

    #[test]
    fn message_names_the_instrument_and_range() {
        let message = measured(Instrument::Swemwbs, vec![3; 6])
            .check_item_scores()
            .unwrap_err();
        assert_eq!(
            message,
            "swemwbs expects 7 item scores, each from 1 to 5; got 6"
        );
    }
}
