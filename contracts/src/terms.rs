//! Funding terms and their pure evaluation: financial years, and the tariffs that price what an
//! anchor pays a provider.

mod arrs;
mod file;
mod financial_year;
mod month;
mod sib;
mod tariff;

pub use arrs::{Entitlement, Wte, share_of_year};
pub use file::{Publication, Terms, TermsError, arrs_rules_stream, read_terms};
pub use financial_year::{FinancialYear, FinancialYearError};
pub use month::{YearMonth, YearMonthError};
pub use sib::{
    Eligibility, Investor, OutcomeDefinition, OutcomeKind, Payer, PayerShare, Phase, SlidingScale,
    check_contract,
};
pub use tariff::{Charge, Charges, Clause, Prices, Tariff, TariffError};
