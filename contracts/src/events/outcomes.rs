//! Payloads for wellbeing measures taken at baseline and follow-up, and the item counts and score
//! ranges each instrument allows.

use std::ops::RangeInclusive;

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
