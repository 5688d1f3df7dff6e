//! Agreements between anchors and providers, with every version of their terms, so that the
//! version in force on any date can be found.

use chrono::{Datelike, NaiveDate};
use followfund_contracts::OdsCode;
use followfund_contracts::events::{ActivityType, AgreementAmended, AgreementSigned};
use followfund_contracts::terms::{Prices, Tariff};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::Records;

/// One version of an agreement's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Terms")]
pub struct AgreementVersion {
    /// 1 for the signed agreement, then 2, 3, … for amendments.
    pub version: u32,
    /// The first day it prices sessions.
    pub effective_from: NaiveDate,
    /// Open prescriptions the provider takes at once.
    pub capacity: u32,
    /// The price list.
    pub tariff: Tariff,
    /// The position of the event that published it.
    pub position: u64,
    /// The price list in pence, to price sessions with: found from `tariff` whenever a version
    /// is made or read back, and never stored, so that a snapshot cannot say otherwise.
    #[serde(skip_serializing)]
    pub prices: Prices,
}

/// A version's terms as published and as a snapshot keeps them: all but its prices.
#[derive(Deserialize)]
struct Terms {
    version: u32,
    effective_from: NaiveDate,
    capacity: u32,
    tariff: Tariff,
    position: u64,
}

impl From<Terms> for AgreementVersion {
    fn from(terms: Terms) -> AgreementVersion {
        AgreementVersion {
            prices: terms.tariff.prices(),
            version: terms.version,
            effective_from: terms.effective_from,
            capacity: terms.capacity,
            tariff: terms.tariff,
            position: terms.position,
        }
    }
}

/// An agreement and its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Its id.
    pub agreement_id: Uuid,
    /// The anchor that pays.
    pub anchor: OdsCode,
    /// The provider that delivers; the anchor itself for self-delivery.
    pub provider: OdsCode,
    /// The first day it is in force.
    pub valid_from: NaiveDate,
    /// The last day it is in force.
    pub valid_to: NaiveDate,
    /// Days the provider has to accept a prescription.
    pub response_window_days: u32,
    /// The activities it covers.
    pub activity_types: Vec<ActivityType>,
    /// Every version, oldest first.
    pub versions: Vec<AgreementVersion>,
}

/// Filed under its id.
impl crate::records::Keyed for Agreement {
    fn id(&self) -> Uuid {
        self.agreement_id
    }
}

impl Agreement {
    /// The version that prices what happens on `date`: the latest in effect by then, while the
    /// agreement is valid.
    pub fn in_force(&self, date: NaiveDate) -> Option<&AgreementVersion> {
        if date < self.valid_from || date > self.valid_to {
            return None;
        }
        self.versions
            .iter()
            .rev()
            .find(|version| version.effective_from <= date)
    }

    /// The version that prices a prescription's session on `date`. A prescription issued while
    /// the agreement was in force is finished under it: a session after the agreement ends is
    /// priced by its last version.
    pub fn pricing(&self, date: NaiveDate) -> Option<&AgreementVersion> {
        self.in_force(date.min(self.valid_to))
    }

    /// Reads what pricing a session reads: the end of its term, and its latest version's start
    /// and prices, which lie a cache line or more apart. See [`super::Ledger::warm`].
    pub(super) fn touch(&self) -> u64 {
        let last = self.versions.last();
        // The day of the year, not the day since year one: only the read matters, and it is
        // the cheaper of the two to compute, for every fact warmed.
        let from = last.map_or(0, |version| version.effective_from.ordinal());
        let prices = last.map_or(0, |version| version.prices.touch());
        u64::from(self.valid_to.ordinal() ^ from) ^ prices
    }

    /// Whether the anchor delivers the activity itself.
    pub fn is_self_delivery(&self) -> bool {
        self.anchor == self.provider
    }
}

/// Every agreement, found by id through a hash: every session priced looks its agreement up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreements {
    by_id: Records<Agreement>,
}

impl Agreements {
    /// The agreement with this id.
    pub fn get(&self, agreement_id: Uuid) -> Option<&Agreement> {
        self.by_id.get(&agreement_id)
    }

    /// The place of the agreement with this id, for records that keep it by place.
    pub(crate) fn place(&self, agreement_id: Uuid) -> Option<u32> {
        self.by_id.place(&agreement_id)
    }

    /// The agreement at `place`, which [`Agreements::place`] gave.
    pub(crate) fn at(&self, place: u32) -> &Agreement {
        self.by_id.at(place)
    }

    /// How many agreements there are.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every agreement, in the order signed.
    pub fn iter(&self) -> impl Iterator<Item = &Agreement> + use<'_> {
        self.by_id.iter().map(|(_, agreement)| agreement)
    }

    pub(crate) fn sign(&mut self, position: u64, signed: &AgreementSigned) {
        let first = AgreementVersion::from(Terms {
            version: 1,
            effective_from: signed.valid_from,
            capacity: signed.capacity,
            tariff: signed.tariff.clone(),
            position,
        });
        let agreement = Agreement {
            agreement_id: signed.agreement_id,
            anchor: signed.anchor.clone(),
            provider: signed.provider.clone(),
            valid_from: signed.valid_from,
            valid_to: signed.valid_to,
            response_window_days: signed.response_window_days,
            activity_types: signed.activity_types.clone(),
            versions: vec![first],
        };
        // A second signature under the same id is kept out: terms are published once and
        // amended, never replaced.
        if !self.by_id.contains(&signed.agreement_id) {
            self.by_id.insert(agreement);
        }
    }

    pub(crate) fn amend(&mut self, position: u64, amended: &AgreementAmended) {
        let Some(agreement) = self.by_id.get_mut(&amended.agreement_id) else {
            return;
        };
        let version = AgreementVersion::from(Terms {
            version: amended.version,
            effective_from: amended.effective_from,
            capacity: amended.capacity,
            tariff: amended.tariff.clone(),
            position,
        });
        agreement.versions.push(version);
        // Versions are kept in the order they take effect, so `in_force` finds the latest.
        agreement
            .versions
            .sort_by_key(|version| (version.effective_from, version.version));
    }
}
