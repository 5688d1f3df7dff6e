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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The element.
    pub clause: Clause,
    /// What it pays.
    pub amount_pence: i64,
    /// What the cap per referral took off it.
    pub capped_pence: i64,
}

/// The most elements one fact is charged under: an attended first session pays the engagement
/// fee and a session fee.
const CHARGES_MAX: usize = 2;

/// The charges for one fact, in clause order, held inline: pricing runs for every session a
/// year folds, and a list on the heap cost an allocation each time.
///
/// The pricing functions fill one the caller keeps rather than return one. Returned, the
/// charges were copied out of the pricing's frame in 16-byte loads over the 8-byte stores that
/// had just written them, a load the CPU cannot serve from its store buffer, so it waited for
/// every earlier store to reach the cache: about a tenth of a national replay's ledger fold,
/// in perf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charges {
    charges: [Charge; CHARGES_MAX],
    len: usize,
}

impl Default for Charges {
    /// No charges, to be filled by a pricing function.
    fn default() -> Charges {
        let nothing = Charge {
            clause: Clause::SessionFee,
            amount_pence: 0,
            capped_pence: 0,
        };
        Charges {
            charges: [nothing; CHARGES_MAX],
            len: 0,
        }
    }
}

impl Charges {
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

    /// The most one prescription can cost: what issuing it commits against the budget. The
    /// tariff must be to the penny, as every tariff the catalogue accepts is.
    pub fn maximum_cost(&self) -> Money {
        Money::from_pence(self.prices().maximum_pence())
    }

    /// The tariff in pence, to price with. Every tariff in the log is to the penny: the
    /// catalogue checks it (see [`Tariff::check`]) before any payload is read.
    pub fn prices(&self) -> Prices {
        let pence = |amount: Option<Money>| {
            amount.map_or(0, |amount| {
                amount.to_pence().expect("a checked tariff is to the penny")
            })
        };
        Prices {
            engagement_pence: pence(self.engagement_fee),
            session_pence: pence(self.session_fee),
            completion_pence: pence(self.completion_fee),
            missed_session_pence: pence(self.missed_session_fee),
            funded_sessions: self.funded_sessions,
            completion_min_sessions: self.completion_min_sessions.unwrap_or(0),
            cap_pence: self.cap_per_referral.map(|cap| pence(Some(cap))),
        }
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

/// A tariff's amounts in pence, found once for each version of an agreement: a year prices
/// a million sessions, and turning the same pounds into pence for every one of them cost more
/// than the pricing itself. An absent fee is 0 pence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prices {
    engagement_pence: i64,
    session_pence: i64,
    completion_pence: i64,
    missed_session_pence: i64,
    funded_sessions: Option<u32>,
    completion_min_sessions: u32,
    cap_pence: Option<i64>,
}

impl Prices {
    /// The most one prescription can cost, in pence (see [`Tariff::maximum_cost`]).
    pub fn maximum_pence(&self) -> i64 {
        let per_session_pence = self.session_pence.max(self.missed_session_pence);
        let sessions_pence = self
            .funded_sessions
            .map_or(0, |count| times_pence(per_session_pence, count));
        let total_pence = [self.engagement_pence, sessions_pence, self.completion_pence]
            .into_iter()
            .fold(0, add_pence);
        match self.cap_pence {
            Some(cap_pence) => total_pence.min(cap_pence),
            None => total_pence,
        }
    }

    /// Fills `charges` with the charges for an attended session, given how many sessions this
    /// prescription has been charged for and how much it has been paid so far.
    pub fn price_attendance(
        &self,
        attended_before: u32,
        sessions_charged: u32,
        paid_pence: i64,
        charges: &mut Charges,
    ) {
        *charges = Charges::default();
        let engagement_pence = if attended_before == 0 {
            self.engagement_pence
        } else {
            0
        };
        let session_pence = if self.funded(sessions_charged) {
            self.session_pence
        } else {
            0
        };
        let elements = [
            (Clause::EngagementFee, engagement_pence),
            (Clause::SessionFee, session_pence),
        ];
        self.capped(&elements, paid_pence, charges);
    }

    /// Fills `charges` with the charge for a missed session: only without notice, and only
    /// while sessions are funded.
    pub fn price_missed(
        &self,
        notice_given: bool,
        sessions_charged: u32,
        paid_pence: i64,
        charges: &mut Charges,
    ) {
        *charges = Charges::default();
        if notice_given || !self.funded(sessions_charged) {
            return;
        }
        let missed = (Clause::MissedSessionFee, self.missed_session_pence);
        self.capped(&[missed], paid_pence, charges);
    }

    /// Fills `charges` with the charge for completing with `attended` sessions.
    pub fn price_completion(&self, attended: u32, paid_pence: i64, charges: &mut Charges) {
        *charges = Charges::default();
        if attended < self.completion_min_sessions {
            return;
        }
        let completion = (Clause::CompletionFee, self.completion_pence);
        self.capped(&[completion], paid_pence, charges);
    }

    /// Reads what pricing an attendance reads, for a fold that brings it into the cache before
    /// it is needed, and returns a value made from it so that the reads are kept.
    pub fn touch(&self) -> u64 {
        let pence = self.engagement_pence ^ self.session_pence ^ self.cap_pence.unwrap_or(0);
        pence as u64 ^ u64::from(self.funded_sessions.unwrap_or(0))
    }

    fn funded(&self, sessions_charged: u32) -> bool {
        self.funded_sessions
            .is_none_or(|funded| sessions_charged < funded)
    }

    /// Applies the cap per referral, in clause order, to what the elements would pay, adding
    /// the charges to `charges`.
    fn capped(&self, elements: &[(Clause, i64)], paid_pence: i64, charges: &mut Charges) {
        let mut room_pence = self
            .cap_pence
            .map(|cap_pence| (cap_pence - paid_pence).max(0));
        for &(clause, amount_pence) in elements {
            if amount_pence == 0 {
                continue;
            }
            let payable_pence = room_pence.map_or(amount_pence, |room| amount_pence.min(room));
            if let Some(room_pence) = room_pence.as_mut() {
                *room_pence -= payable_pence;
                assert!(*room_pence >= 0, "payable never exceeds the room left");
            }
            charges.push(Charge {
                clause,
                amount_pence: payable_pence,
                capped_pence: amount_pence - payable_pence,
            });
        }
    }
}

fn add_pence(a_pence: i64, b_pence: i64) -> i64 {
    a_pence
        .checked_add(b_pence)
        .expect("tariff sums stay far below the limit")
}

fn times_pence(amount_pence: i64, count: u32) -> i64 {
    amount_pence
        .checked_mul(count.into())
        .expect("tariff sums stay far below the limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attendance(prices: &Prices, attended_before: u32, charged: u32, paid_pence: i64) -> Charges {
        let mut charges = Charges::default();
        prices.price_attendance(attended_before, charged, paid_pence, &mut charges);
        charges
    }

    fn missed(prices: &Prices, notice_given: bool, charged: u32, paid_pence: i64) -> Charges {
        let mut charges = Charges::default();
        prices.price_missed(notice_given, charged, paid_pence, &mut charges);
        charges
    }

    fn completion(prices: &Prices, attended: u32, paid_pence: i64) -> Charges {
        let mut charges = Charges::default();
        prices.price_completion(attended, paid_pence, &mut charges);
        charges
    }

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

    fn pence(text: &str) -> i64 {
        pounds(text).to_pence().unwrap()
    }

    fn total(charges: &[Charge]) -> i64 {
        charges.iter().map(|charge| charge.amount_pence).sum()
    }

    #[test]
    fn the_commitment_is_the_capped_maximum() {
        // 25 + 10 × 15 + 50 = 225, capped at 200.
        assert_eq!(ten_week_course().maximum_cost(), pounds("200.00"));
        assert_eq!(ten_week_course().prices().maximum_pence(), 20_000);
        let uncapped = Tariff {
            cap_per_referral: None,
            ..ten_week_course()
        };
        assert_eq!(uncapped.maximum_cost(), pounds("225.00"));
        assert_eq!(uncapped.prices().maximum_pence(), 22_500);
        // A missed session that pays more than an attended one sets the maximum per session:
        // 25 + 10 × 17.50 + 50 = 250.
        let strict = Tariff {
            missed_session_fee: Some(pounds("17.50")),
            ..uncapped
        };
        assert_eq!(strict.maximum_cost(), pounds("250.00"));
        assert_eq!(strict.prices().maximum_pence(), 25_000);
    }

    #[test]
    fn a_full_course_is_paid_up_to_the_cap() {
        let prices = ten_week_course().prices();
        let mut paid_pence = 0;
        for attended_before in 0..10 {
            let charges = attendance(&prices, attended_before, attended_before, paid_pence);
            paid_pence += total(&charges);
        }
        // First session 25 + 15, nine more at 15: £175.00.
        assert_eq!(paid_pence, pence("175.00"));
        let completed = completion(&prices, 10, paid_pence);
        assert_eq!(
            completed[..],
            [Charge {
                clause: Clause::CompletionFee,
                amount_pence: pence("25.00"),
                capped_pence: pence("25.00")
            }]
        );
        // An eleventh session is self-funded.
        assert!(attendance(&prices, 10, 10, pence("200.00")).is_empty());
    }

    #[test]
    fn the_cap_leaves_no_room_once_reached() {
        let prices = ten_week_course().prices();
        // £195 paid: £5 of the session fee fits under the £200 cap, the engagement fee none.
        let charges = attendance(&prices, 0, 3, pence("195.00"));
        let charged: Vec<_> = charges
            .iter()
            .map(|c| (c.clause, c.amount_pence, c.capped_pence))
            .collect();
        assert_eq!(
            charged,
            vec![
                (Clause::EngagementFee, 500, 2_000),
                (Clause::SessionFee, 0, 1_500)
            ]
        );
        let over = attendance(&prices, 1, 4, pence("210.00"));
        assert_eq!(total(&over), 0, "paid beyond the cap leaves no room");
    }

    #[test]
    fn the_first_session_carries_the_engagement_fee() {
        let charges = attendance(&ten_week_course().prices(), 0, 0, 0);
        let clauses: Vec<_> = charges.iter().map(|c| (c.clause, c.amount_pence)).collect();
        assert_eq!(
            clauses,
            vec![
                (Clause::EngagementFee, pence("25.00")),
                (Clause::SessionFee, pence("15.00"))
            ]
        );
    }

    #[test]
    fn completion_needs_its_minimum() {
        let prices = ten_week_course().prices();
        assert!(completion(&prices, 7, pence("130.00")).is_empty());
        assert_eq!(
            total(&completion(&prices, 8, pence("130.00"))),
            pence("50.00")
        );
    }

    #[test]
    fn a_missed_session_is_free_unless_the_agreement_says_otherwise() {
        let prices = ten_week_course().prices();
        assert!(missed(&prices, false, 0, 0).is_empty());
        let strict = Tariff {
            missed_session_fee: Some(pounds("7.50")),
            ..ten_week_course()
        }
        .prices();
        assert_eq!(
            total(&missed(&strict, false, 3, pence("70.00"))),
            pence("7.50")
        );
        assert!(
            missed(&strict, true, 3, pence("70.00")).is_empty(),
            "notice was given"
        );
        assert!(
            missed(&strict, false, 10, pence("175.00")).is_empty(),
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
