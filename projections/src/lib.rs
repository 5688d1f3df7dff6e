//! Pure folds from the event log to read models: journeys, the double-entry ledger, payment runs,
//! ARRS claims and SIB outcomes. Never performs I/O, never reads the clock, never draws random
//! numbers: the same events in the same order always give the same figures.
#![deny(missing_docs)]
