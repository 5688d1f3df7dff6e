//! ARRS rules as data, and the arithmetic DOMAIN.md §5 decides: how a population becomes an
//! entitlement, and how an annual amount is shared out over the days a worker was in post.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Money;

/// Whole-time equivalents: a share of a full-time post, more than 0 and at most 1 for one
/// worker, and any non-negative figure for an entitlement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wte(Decimal);

impl Wte {
    /// Whole posts.
    pub fn whole(posts: u32) -> Wte {
        Wte(Decimal::from(posts))
    }

    /// The figure.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// Whether one worker can hold this much of a post: more than 0, at most 1, and to no more
    /// than four decimal places (0.6, 0.8125).
    pub fn check_for_one_worker(self) -> Result<(), String> {
        if self.0 <= Decimal::ZERO || self.0 > Decimal::ONE {
            return Err(format!(
                "{self} WTE: one worker holds more than 0 and at most 1 WTE"
            ));
        }
        if self.0.scale() > 4 {
            return Err(format!("{self} WTE: give at most four decimal places"));
        }
        Ok(())
    }
}

impl fmt::Display for Wte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

impl FromStr for Wte {
    type Err = String;

    fn from_str(text: &str) -> Result<Wte, String> {
        Decimal::from_str_exact(text.trim())
            .map(Wte)
            .map_err(|_| format!("`{text}` is not a WTE figure such as 0.6"))
    }
}

impl Serialize for Wte {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Wte {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Wte, D::Error> {
        crate::text::parse_str(deserializer, "a whole-time equivalent", str::parse)
    }
}

impl JsonSchema for Wte {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Wte".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "description": "Whole-time equivalents as a decimal string, such as \"0.6\"." })
    }
}

/// How a year's rules turn a PCN's population into what it may claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entitlement {
    /// Whole link workers by registered list size, as in 2019/20: none below the minimum, one up
    /// to the first band's top, two above it, and one more for each further band.
    WteByPopulation {
        /// The smallest population entitled to one WTE (30,000 in 2019/20).
        minimum_population: u32,
        /// The largest population entitled to only one WTE (100,000 in 2019/20).
        one_wte_up_to: u32,
        /// The population each further WTE needs beyond `one_wte_up_to` (50,000 in 2019/20).
        population_per_further_wte: u32,
    },
    /// One sum for every additional role, as from 2020/21: weighted population × a rate, or, in a
    /// year whose rate is not in our sources, the sum NHS England notifies per PCN.
    CombinedSum {
        /// Pounds per weighted patient (£7.131 in 2020/21); absent when only notified sums apply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[serde(with = "rust_decimal::serde::str_option")]
        #[schemars(with = "Option<String>")]
        rate_per_weighted_patient: Option<Decimal>,
    },
}

impl Entitlement {
    /// The WTE a registered population is entitled to, under population rules.
    pub fn wte_for(&self, population: u32) -> Option<u32> {
        let Entitlement::WteByPopulation {
            minimum_population,
            one_wte_up_to,
            population_per_further_wte,
        } = *self
        else {
            return None;
        };
        Some(if population < minimum_population {
            0
        } else if population <= one_wte_up_to {
            1
        } else {
            2 + (population - one_wte_up_to) / population_per_further_wte
        })
    }

    /// The combined sum for a weighted population at the published rate, to the penny.
    pub fn sum_for(&self, weighted_population: Decimal) -> Option<Money> {
        match self {
            Entitlement::CombinedSum {
                rate_per_weighted_patient: Some(rate),
            } => Some(Money::from_decimal(weighted_population * rate).round_to_penny()),
            _ => None,
        }
    }

    /// Why a year's entitlement cannot be used, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Entitlement::WteByPopulation {
                minimum_population,
                one_wte_up_to,
                population_per_further_wte,
            } => {
                if *population_per_further_wte == 0 || one_wte_up_to < minimum_population {
                    return Err("population bands must rise: minimum ≤ one_wte_up_to, and population_per_further_wte above 0".into());
                }
                Ok(())
            }
            Entitlement::CombinedSum {
                rate_per_weighted_patient: Some(rate),
            } if *rate <= Decimal::ZERO => Err(format!(
                "a rate of {rate} per weighted patient is not positive"
            )),
            Entitlement::CombinedSum { .. } => Ok(()),
        }
    }
}

/// `annual × wte × days ÷ days_in_year`, unrounded: callers add the parts of a month and round
/// the total once.
pub fn share_of_year(annual: Money, wte: Wte, days: u32, days_in_year: u32) -> Decimal {
    debug_assert!(days <= days_in_year, "a month's days lie within its year");
    annual.as_decimal() * wte.as_decimal() * Decimal::from(days) / Decimal::from(days_in_year)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_2019() -> Entitlement {
        Entitlement::WteByPopulation {
            minimum_population: 30_000,
            one_wte_up_to: 100_000,
            population_per_further_wte: 50_000,
        }
    }

    /// DOMAIN.md §5's worked boundaries.
    #[test]
    fn population_bands_give_whole_link_workers() {
        let cases = [
            (29_999, 0),
            (30_000, 1),
            (100_000, 1),
            (100_001, 2),
            (149_999, 2),
            (150_000, 3),
            (250_000, 5),
        ];
        for (population, wte) in cases {
            assert_eq!(rules_2019().wte_for(population), Some(wte), "{population}");
        }
    }

    #[test]
    fn a_combined_sum_is_weighted_population_times_the_rate_to_the_penny() {
        let rules = Entitlement::CombinedSum {
            rate_per_weighted_patient: Some(Decimal::new(7131, 3)),
        };
        // 52,345.6 × £7.131 = £373,276.4736 → £373,276.47.
        let sum = rules.sum_for(Decimal::new(523_456, 1)).unwrap();
        assert_eq!(sum.to_string(), "£373276.47");
        assert_eq!(rules_2019().sum_for(Decimal::ONE), None);
    }

    #[test]
    fn one_worker_holds_at_most_one_wte() {
        assert!("0.6".parse::<Wte>().unwrap().check_for_one_worker().is_ok());
        assert!(
            "1.2"
                .parse::<Wte>()
                .unwrap()
                .check_for_one_worker()
                .is_err()
        );
        assert!("0".parse::<Wte>().unwrap().check_for_one_worker().is_err());
        assert!(
            "0.12345"
                .parse::<Wte>()
                .unwrap()
                .check_for_one_worker()
                .is_err()
        );
    }
}
