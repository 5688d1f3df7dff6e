//! Funding terms and their pure evaluation: financial years, and the tariffs that price what an
//! anchor pays a provider.

mod file;
mod financial_year;
mod tariff;

pub use file::{Publication, Terms, TermsError, read_terms};
pub use financial_year::{FinancialYear, FinancialYearError};
pub use tariff::{Charge, Clause, Tariff, TariffError};
