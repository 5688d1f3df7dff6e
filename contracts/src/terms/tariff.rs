//! Tariffs: what an anchor pays a provider for one prescription, element by element, and the
//! pure evaluation of each fact against them ("this session earns £15.00, under the session
//! fee, the 3rd of 10 funded").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::money::Money;

/// An agreement's price list. Every element is optional; amounts are pounds with at most two
/// decimal places. The seeds give no prices, so tariffs are always data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// Paid once, with the first attended session.
    #[serde(default)]
    pub engagement_fee: Option<Money>,
    /// Paid for each attended session, up to `funded_sessions`.
    #[serde(default)]
    pub session_fee: Option<Money>,
    /// How many sessions are paid for, attended or missed without notice together; after them
    /// the person may carry on self-funded.
    #[serde(default)]
    pub funded_sessions: Option<u32>,
    /// Paid once, when the prescription completes with at least `completion_min_sessions`
    /// attended.
    #[serde(default)]
    pub completion_fee: Option<Money>,
    /// Attended sessions needed for the completion fee (0 when absent).
    #[serde(default)]
    pub completion_min_sessions: Option<u32>,
    /// The most one prescription is paid, all elements together.
    #[serde(default)]
    pub cap_per_referral: Option<Money>,
    /// Paid for a session missed without notice; none unless the agreement says so.
    #[serde(default)]
    pub missed_session_fee: Option<Money>,
}

/// The tariff element an amount is paid under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Clause {
    /// The engagement fee, with the first attended session.
    EngagementFee,
    /// The session fee.
    SessionFee,
    /// The completion fee.
    CompletionFee,
    /// The fee for a session missed without notice.
    MissedSessionFee,
}

/// One element's charge for a fact, after the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The element.
    pub clause: Clause,
    /// What it pays.
    pub amount: Money,
    /// What the cap per referral took off it.
    pub capped: Money,
}

/// The most elements one fact is charged under: an attended first session pays the engagement
/// fee and a session fee.
const CHARGES_MAX: usize = 2;

/// The charges for one fact, in clause order, held inline: pricing runs for every session a
/// year folds, and a list on the heap cost an allocation each time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charges {
    charges: [Charge; CHARGES_MAX],
    len: usize,
}

impl Charges {
    fn none() -> Charges {
        let nothing = Charge {
            clause: Clause::SessionFee,
            amount: Money::zero(),
            capped: Money::zero(),
        };
        Charges {
            charges: [nothing; CHARGES_MAX],
            len: 0,
        }
    }

    fn push(&mut self, charge: Charge) {
        assert!(
            self.len < CHARGES_MAX,
            "a fact is charged under two clauses at most"
        );
        self.charges[self.len] = charge;
        self.len += 1;
    }
}

impl std::ops::Deref for Charges {
    type Target = [Charge];

    fn deref(&self) -> &[Charge] {
        &self.charges[..self.len]
    }
}

/// Why a tariff cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    /// A negative amount.
    #[error("`{field}` is negative: tariff amounts are what the provider is paid, from £0.00 up")]
    Negative {
        /// The field.
        field: &'static str,
    },
    /// An amount finer than a penny.
    #[error("`{field}` has more than two decimal places: give pounds and pence, such as 12.50")]
    FinerThanPence {
        /// The field.
        field: &'static str,
    },
    /// No bound on what a prescription may cost.
    #[error(
        "the tariff pays per session with no `funded_sessions` and no `cap_per_referral`: give one, so that a prescription's commitment is known"
    )]
    Unbounded,
    /// A completion threshold with no completion fee.
    #[error(
        "`completion_min_sessions` is set but `completion_fee` is not: give the fee, or drop the threshold"
    )]
    ThresholdWithoutFee,
}

impl Tariff {
    /// Checks the tariff can price every prescription with a known maximum.
    pub fn check(&self) -> Result<(), TariffError> {
        for (field, amount) in self.amounts() {
            let Some(amount) = amount else { continue };
            if amount.is_negative() {
                return Err(TariffError::Negative { field });
            }
            if amount.round_to_penny() != amount {
                return Err(TariffError::FinerThanPence { field });
            }
        }
        let per_session = self.session_fee.is_some() || self.missed_session_fee.is_some();
        if per_session && self.funded_sessions.is_none() && self.cap_per_referral.is_none() {
            return Err(TariffError::Unbounded);
        }
        if self.completion_min_sessions.is_some() && self.completion_fee.is_none() {
            return Err(TariffError::ThresholdWithoutFee);
        }
        Ok(())
    }

    /// The most one prescription can cost: what issuing it commits against the budget.
    pub fn maximum_cost(&self) -> Money {
        let per_session = fee(self.session_fee).max(fee(self.missed_session_fee));
        let sessions = self
            .funded_sessions
            .map_or(Money::zero(), |count| times(per_session, count));
        let total = sum(&[fee(self.engagement_fee), sessions, fee(self.completion_fee)]);
        match self.cap_per_referral {
            Some(cap) => total.min(cap),
            None => total,
        }
    }

    /// The charges for an attended session, given how many sessions this prescription has
    /// been charged for and how much it has been paid so far.
    pub fn price_attendance(
        &self,
        attended_before: u32,
        sessions_charged: u32,
        paid: Money,
    ) -> Charges {
        let engagement = (attended_before == 0).then_some(self.engagement_fee);
        let session = self.funded(sessions_charged).then_some(self.session_fee);
        self.capped(
            &[
                (Clause::EngagementFee, engagement.flatten()),
                (Clause::SessionFee, session.flatten()),
            ],
            paid,
        )
    }

    /// The charge for a missed session: only without notice, and only while sessions are funded.
    pub fn price_missed(&self, notice_given: bool, sessions_charged: u32, paid: Money) -> Charges {
        if notice_given || !self.funded(sessions_charged) {
            return Charges::none();
        }
        self.capped(&[(Clause::MissedSessionFee, self.missed_session_fee)], paid)
    }

    /// The charge for completing with `attended` sessions.
    pub fn price_completion(&self, attended: u32, paid: Money) -> Charges {
        if attended < self.completion_min_sessions.unwrap_or(0) {
            return Charges::none();
        }
        self.capped(&[(Clause::CompletionFee, self.completion_fee)], paid)
    }

    fn funded(&self, sessions_charged: u32) -> bool {
        self.funded_sessions
            .is_none_or(|funded| sessions_charged < funded)
    }

    /// Applies the cap per referral, in clause order, to what the elements would pay, in
    /// pence: published tariffs are to the penny (see [`Tariff::check`]), and so is what a
    /// prescription has been paid.
    fn capped(&self, elements: &[(Clause, Option<Money>)], paid: Money) -> Charges {
        let pence = |amount: Money| {
            amount
                .to_pence()
                .expect("tariff amounts and earnings are to the penny")
        };
        let mut room = (self.cap_per_referral).map(|cap| (pence(cap) - pence(paid)).max(0));
        let mut charges = Charges::none();
        for (clause, amount) in elements {
            let Some(amount) = amount.map(pence).filter(|amount| *amount != 0) else {
                continue;
            };
            let payable = room.map_or(amount, |room| amount.min(room));
            if let Some(room) = room.as_mut() {
                *room -= payable;
                assert!(*room >= 0, "payable never exceeds the room left");
            }
            charges.push(Charge {
                clause: *clause,
                amount: Money::from_pence(payable),
                capped: Money::from_pence(amount - payable),
            });
        }
        charges
    }

    fn amounts(&self) -> [(&'static str, Option<Money>); 5] {
        [
            ("engagement_fee", self.engagement_fee),
            ("session_fee", self.session_fee),
            ("completion_fee", self.completion_fee),
            ("cap_per_referral", self.cap_per_referral),
            ("missed_session_fee", self.missed_session_fee),
        ]
    }
}

fn fee(amount: Option<Money>) -> Money {
    amount.unwrap_or(Money::zero())
}

fn sum(amounts: &[Money]) -> Money {
    amounts.iter().fold(Money::zero(), |total, amount| {
        total
            .checked_add(*amount)
            .expect("tariff sums stay far below the limit")
    })
}

fn times(amount: Money, count: u32) -> Money {
    amount
        .checked_mul_decimal(count.into())
        .expect("tariff sums stay far below the limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pounds(text: &str) -> Money {
        text.parse().unwrap()
    }

    /// A ten-week course: £25 to engage, £15 a session for ten sessions, £50 on completing with
    /// at least eight, never more than £200 in all.
    fn ten_week_course() -> Tariff {
        Tariff {
            engagement_fee: Some(pounds("25.00")),
            session_fee: Some(pounds("15.00")),
            funded_sessions: Some(10),
            completion_fee: Some(pounds("50.00")),
            completion_min_sessions: Some(8),
            cap_per_referral: Some(pounds("200.00")),
            missed_session_fee: None,
        }
    }

    fn total(charges: &[Charge]) -> Money {
        sum(&charges.iter().map(|c| c.amount).collect::<Vec<_>>())
    }

    #[test]
    fn the_commitment_is_the_capped_maximum() {
        // 25 + 10 × 15 + 50 = 225, capped at 200.
        assert_eq!(ten_week_course().maximum_cost(), pounds("200.00"));
        let uncapped = Tariff {
            cap_per_referral: None,
            ..ten_week_course()
        };
        assert_eq!(uncapped.maximum_cost(), pounds("225.00"));
    }

    #[test]
    fn a_full_course_is_paid_up_to_the_cap() {
        let tariff = ten_week_course();
        let mut paid = Money::zero();
        for attended_before in 0..10 {
            let charges = tariff.price_attendance(attended_before, attended_before, paid);
            paid = paid.checked_add(total(&charges)).unwrap();
        }
        // First session 25 + 15, nine more at 15: £175.00.
        assert_eq!(paid, pounds("175.00"));
        let completion = tariff.price_completion(10, paid);
        assert_eq!(
            completion[..],
            [Charge {
                clause: Clause::CompletionFee,
                amount: pounds("25.00"),
                capped: pounds("25.00")
            }]
        );
        // An eleventh session is self-funded.
        assert!(tariff.price_attendance(10, 10, pounds("200.00")).is_empty());
    }

    #[test]
    fn the_first_session_carries_the_engagement_fee() {
        let charges = ten_week_course().price_attendance(0, 0, Money::zero());
        let clauses: Vec<_> = charges.iter().map(|c| (c.clause, c.amount)).collect();
        assert_eq!(
            clauses,
            vec![
                (Clause::EngagementFee, pounds("25.00")),
                (Clause::SessionFee, pounds("15.00"))
            ]
        );
    }

    #[test]
    fn completion_needs_its_minimum() {
        assert!(
            ten_week_course()
                .price_completion(7, pounds("130.00"))
                .is_empty()
        );
        assert_eq!(
            total(&ten_week_course().price_completion(8, pounds("130.00"))),
            pounds("50.00")
        );
    }

    #[test]
    fn a_missed_session_is_free_unless_the_agreement_says_otherwise() {
        assert!(
            ten_week_course()
                .price_missed(false, 0, Money::zero())
                .is_empty()
        );
        let strict = Tariff {
            missed_session_fee: Some(pounds("7.50")),
            ..ten_week_course()
        };
        assert_eq!(
            total(&strict.price_missed(false, 3, pounds("70.00"))),
            pounds("7.50")
        );
        assert!(
            strict.price_missed(true, 3, pounds("70.00")).is_empty(),
            "notice was given"
        );
        assert!(
            strict.price_missed(false, 10, pounds("175.00")).is_empty(),
            "funded sessions used up"
        );
    }

    #[test]
    fn tariffs_that_cannot_be_used_are_refused() {
        let unbounded = Tariff {
            funded_sessions: None,
            cap_per_referral: None,
            ..ten_week_course()
        };
        assert_eq!(unbounded.check(), Err(TariffError::Unbounded));
        let negative = Tariff {
            session_fee: Some(pounds("-1.00")),
            ..ten_week_course()
        };
        assert_eq!(
            negative.check(),
            Err(TariffError::Negative {
                field: "session_fee"
            })
        );
        let fine = Tariff {
            engagement_fee: Some(pounds("25.005")),
            ..ten_week_course()
        };
        assert_eq!(
            fine.check(),
            Err(TariffError::FinerThanPence {
                field: "engagement_fee"
            })
        );
        let threshold = Tariff {
            completion_fee: None,
            ..ten_week_course()
        };
        assert_eq!(threshold.check(), Err(TariffError::ThresholdWithoutFee));
        assert_eq!(ten_week_course().check(), Ok(()));
    }
}
