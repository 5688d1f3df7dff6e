//! Financial years (1 April to 31 March) and their months, labelled M01 (April) to M12 (March).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A financial year, named by the calendar year it starts in: `2026/27` runs from 1 April 2026
/// to 31 March 2027.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FinancialYear {
    start_year: i32,
}

/// A financial year written in a form the ledger does not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a financial year: write it as 2026/27 (the year it starts, a slash, the next year's last two digits)"
)]
pub struct FinancialYearError {
    input: String,
}

impl FinancialYear {
    /// The year starting on 1 April of `start_year`.
    pub fn starting(start_year: i32) -> FinancialYear {
        FinancialYear { start_year }
    }

    /// The year a date falls in.
    pub fn containing(date: NaiveDate) -> FinancialYear {
        let start_year = if date.month() >= 4 {
            date.year()
        } else {
            date.year() - 1
        };
        FinancialYear { start_year }
    }

    /// 1 April.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year, 4, 1).expect("1 April exists")
    }

    /// 31 March of the next calendar year.
    pub fn last_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year + 1, 3, 31).expect("31 March exists")
    }

    /// 365, or 366 when the year holds a 29 February.
    pub fn days(self) -> u32 {
        (self.last_day() - self.first_day()).num_days() as u32 + 1
    }

    /// Whether `date` falls in this year.
    pub fn contains(self, date: NaiveDate) -> bool {
        self.first_day() <= date && date <= self.last_day()
    }

    /// The month label of a date in this year: M01 for April to M12 for March.
    pub fn month_label(date: NaiveDate) -> String {
        let ordinal = (date.month() + 8) % 12 + 1;
        format!("M{ordinal:02}")
    }
}

impl fmt::Display for FinancialYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:02}", self.start_year, (self.start_year + 1) % 100)
    }
}

impl FromStr for FinancialYear {
    type Err = FinancialYearError;

    fn from_str(input: &str) -> Result<FinancialYear, FinancialYearError> {
        let error = || FinancialYearError {
            input: input.to_owned(),
        };
        let (start, end) = input.split_once(['/', '-']).ok_or_else(error)?;
        let start_year: i32 = start.parse().map_err(|_| error())?;
        let end_short: i32 = end.parse().map_err(|_| error())?;
        let plausible = start.len() == 4 && end.len() == 2 && (1990..2200).contains(&start_year);
        if !plausible || end_short != (start_year + 1) % 100 {
            return Err(error());
        }
        Ok(FinancialYear { start_year })
    }
}

impl Serialize for FinancialYear {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FinancialYear {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FinancialYear, D::Error> {
        crate::text::parse_str(deserializer, "a financial year such as 2023/24", str::parse)
    }
}

impl JsonSchema for FinancialYear {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FinancialYear".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "description": "A financial year such as 2026/27 (1 April to 31 March)." })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_year_runs_from_april_to_march() {
        let year: FinancialYear = "2019/20".parse().unwrap();
        assert_eq!(year.first_day(), date(2019, 4, 1));
        assert_eq!(year.last_day(), date(2020, 3, 31));
        assert_eq!(year.days(), 366, "2019/20 holds 29 February 2020");
        assert_eq!(FinancialYear::starting(2026).days(), 365);
        assert_eq!(FinancialYear::containing(date(2020, 3, 31)), year);
        assert_eq!(
            FinancialYear::containing(date(2020, 4, 1)),
            FinancialYear::starting(2020)
        );
        assert_eq!(year.to_string(), "2019/20");
        assert_eq!(FinancialYear::starting(2099).to_string(), "2099/00");
    }

    #[test]
    fn months_are_labelled_from_april() {
        assert_eq!(FinancialYear::month_label(date(2026, 4, 30)), "M01");
        assert_eq!(FinancialYear::month_label(date(2026, 12, 1)), "M09");
        assert_eq!(FinancialYear::month_label(date(2027, 3, 31)), "M12");
    }

    #[test]
    fn bad_years_are_refused() {
        for input in ["2019", "2019/21", "19/20", "2019/2020", "abcd/ef"] {
            let error = input.parse::<FinancialYear>().unwrap_err();
            assert!(error.to_string().contains("2026/27"), "{input}: {error}");
        }
        assert_eq!(
            "2026-27".parse::<FinancialYear>().unwrap(),
            FinancialYear::starting(2026)
        );
    }
}
