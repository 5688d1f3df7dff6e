//! Calendar months, the period ARRS claims are made for, written `2019-08`.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Months, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::FinancialYear;

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    first_day: NaiveDate,
}

/// A month that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a month: write it as YYYY-MM, for example 2019-08")]
pub struct YearMonthError(String);

impl YearMonth {
    /// The month of `date`.
    pub fn containing(date: NaiveDate) -> YearMonth {
        YearMonth {
            first_day: date.with_day(1).expect("every month has a first day"),
        }
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        self.first_day
    }

    /// Its last day.
    pub fn last_day(self) -> NaiveDate {
        self.next()
            .first_day
            .pred_opt()
            .expect("dates far from the end of time")
    }

    /// How many days it has.
    pub fn days(self) -> u32 {
        self.last_day().day()
    }

    /// The month after.
    pub fn next(self) -> YearMonth {
        YearMonth {
            first_day: self.first_day + Months::new(1),
        }
    }

    /// The financial year it falls in.
    pub fn financial_year(self) -> FinancialYear {
        FinancialYear::containing(self.first_day)
    }

    /// The twelve months of a financial year, April first.
    pub fn of_year(year: FinancialYear) -> impl Iterator<Item = YearMonth> {
        let april = YearMonth::containing(year.first_day());
        std::iter::successors(Some(april), |month| Some(month.next())).take(12)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.first_day.format("%Y-%m"))
    }
}

impl FromStr for YearMonth {
    type Err = YearMonthError;

    fn from_str(text: &str) -> Result<YearMonth, YearMonthError> {
        let well_formed = text.len() == 7 && text.as_bytes()[4] == b'-';
        NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
            .ok()
            .filter(|_| well_formed)
            .map(YearMonth::containing)
            .ok_or_else(|| YearMonthError(text.to_string()))
    }
}

impl Serialize for YearMonth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<YearMonth, D::Error> {
        crate::text::parse_str(deserializer, "a month such as 2023-04", str::parse)
    }
}

impl JsonSchema for YearMonth {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "YearMonth".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "description": "A calendar month such as 2019-08." })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_read_count_their_days_and_belong_to_a_year() {
        let february: YearMonth = "2020-02".parse().unwrap();
        assert_eq!(february.days(), 29);
        assert_eq!(february.financial_year().to_string(), "2019/20");
        assert_eq!(february.to_string(), "2020-02");
        assert!("2019-13".parse::<YearMonth>().is_err());
        assert!("2019-8".parse::<YearMonth>().is_err());
        let year = FinancialYear::starting(2019);
        let months: Vec<String> = YearMonth::of_year(year).map(|m| m.to_string()).collect();
        assert_eq!(months.first().unwrap(), "2019-04");
        assert_eq!(months.last().unwrap(), "2020-03");
        assert_eq!(months.len(), 12);
    }
}
