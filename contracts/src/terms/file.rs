//! Terms files: budgets, agreements, amendments, grants and ARRS rules written as TOML, read into the events
//! that publish them, or refused with the line and field at fault.

use serde::Deserialize;
use toml::Spanned;

use crate::events::{
    AgreementAmended, AgreementSigned, ArrsRulesPublished, BudgetAllocated, CapacityGrantAwarded,
    SibContractPublished,
};
use crate::{CatalogueError, Event};

/// A terms file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsFile {
    /// Where the terms come from: a contract reference or commissioning decision.
    source: String,
    #[serde(default)]
    budget: Vec<Spanned<BudgetAllocated>>,
    #[serde(default)]
    agreement: Vec<Spanned<AgreementSigned>>,
    #[serde(default)]
    amendment: Vec<Spanned<AgreementAmended>>,
    #[serde(default)]
    grant: Vec<Spanned<CapacityGrantAwarded>>,
    #[serde(default)]
    arrs_rules: Vec<Spanned<ArrsRulesPublished>>,
    #[serde(default)]
    sib_contract: Vec<Spanned<SibContractPublished>>,
}

/// One event a terms file publishes, with the stream it goes to and the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The stream: `budget-<id>`, `agreement-<id>`, `grant-<id>` or `arrs-rules-<year>`.
    pub stream: String,
    /// The version the stream must be at before this event: 0 for a new stream, and for an
    /// amendment the version before it.
    pub version_before: u64,
    /// The event.
    pub event: Event,
    /// The line of the file its table starts on.
    pub line: usize,
}

/// A terms file, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// Where the terms come from.
    pub source: String,
    /// The events to publish, in the file's order: budgets, agreements, amendments, grants.
    pub publications: Vec<Publication>,
}

/// Why a terms file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {message}")]
pub struct TermsError {
    /// The 1-based line at fault.
    pub line: usize,
    /// The field at fault, as far as it is known.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Reads a terms file; nothing is published unless every table in it is valid.
pub fn read_terms(text: &str) -> Result<Terms, TermsError> {
    let file: TermsFile = toml::from_str(text).map_err(|error| TermsError {
        line: error.span().map_or(1, |span| line_of(text, span.start)),
        field: String::new(),
        message: error.message().to_string(),
    })?;
    if file.source.trim().is_empty() {
        return Err(TermsError {
            line: 1,
            field: "source".into(),
            message: "name where these terms come from".into(),
        });
    }
    let mut publications = Vec::new();
    for item in file.budget {
        let stream = format!("budget-{}", item.get_ref().allocation_id);
        publications.push(publication(text, item, "budget.allocated", stream, 0)?);
    }
    for item in file.agreement {
        let stream = format!("agreement-{}", item.get_ref().agreement_id);
        publications.push(publication(text, item, "agreement.signed", stream, 0)?);
    }
    for item in file.amendment {
        let (stream, before) = (
            format!("agreement-{}", item.get_ref().agreement_id),
            u64::from(item.get_ref().version) - 1,
        );
        publications.push(publication(
            text,
            item,
            "agreement.amended",
            stream,
            before,
        )?);
    }
    for item in file.grant {
        let stream = format!("grant-{}", item.get_ref().grant_id);
        publications.push(publication(
            text,
            item,
            "capacity_grant.awarded",
            stream,
            0,
        )?);
    }
    for item in file.arrs_rules {
        let rules = item.get_ref();
        let stream = arrs_rules_stream(rules.financial_year);
        let before = u64::from(rules.version.saturating_sub(1));
        publications.push(publication(
            text,
            item,
            "arrs_rules.published",
            stream,
            before,
        )?);
    }
    for item in file.sib_contract {
        let stream = format!("sib-{}", item.get_ref().contract_id);
        publications.push(publication(
            text,
            item,
            "sib_contract.published",
            stream,
            0,
        )?);
    }
    check_versions_in_order(&publications)?;
    Ok(Terms {
        source: file.source,
        publications,
    })
}

/// The stream a year's ARRS rules and their revisions go to.
pub fn arrs_rules_stream(year: crate::terms::FinancialYear) -> String {
    format!("arrs-rules-{}", year.to_string().replace('/', "-"))
}

/// Within one file, the versions of an agreement or of a year's rules go up one by one; the first
/// of them is checked
/// against the log when the file is published.
fn check_versions_in_order(publications: &[Publication]) -> Result<(), TermsError> {
    let mut last: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for publication in publications {
        if let Some(before) = last.get(publication.stream.as_str())
            && publication.version_before != before + 1
        {
            return Err(TermsError {
                line: publication.line,
                field: "version".into(),
                message: format!(
                    "version {} follows version {} of the same terms in this file: number versions one by one",
                    publication.version_before + 1,
                    before + 1
                ),
            });
        }
        last.insert(&publication.stream, publication.version_before);
    }
    Ok(())
}

/// Checks one table as the catalogue would and turns it into its event.
fn publication<T: serde::Serialize>(
    text: &str,
    item: Spanned<T>,
    event_type: &str,
    stream: String,
    version_before: u64,
) -> Result<Publication, TermsError> {
    let line = line_of(text, item.span().start);
    let data = serde_json::to_value(item.get_ref()).expect("terms serialise");
    let event = Event::decode(event_type, 1, data).map_err(|error| match error {
        CatalogueError::InvalidData { path, message, .. } => TermsError {
            line,
            field: path.trim_start_matches("data.").to_string(),
            message,
        },
        other => TermsError {
            line,
            field: String::new(),
            message: other.to_string(),
        },
    })?;
    Ok(Publication {
        stream,
        version_before,
        event,
        line,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../rules/examples/walking-group-2026-27.toml");

    #[test]
    fn each_years_arrs_rules_read_into_a_first_version() {
        let files = [
            (
                include_str!("../../rules/arrs/2019-20.toml"),
                "2019-07-01",
                "£34113.00",
            ),
            (
                include_str!("../../rules/arrs/2020-21.toml"),
                "2020-04-01",
                "£35389.00",
            ),
            (
                include_str!("../../rules/arrs/2022-23.toml"),
                "2022-04-01",
                "£36428.00",
            ),
        ];
        for (text, from, maximum) in files {
            let terms = read_terms(text).unwrap();
            let [publication] = terms.publications.as_slice() else {
                panic!("one version per file");
            };
            let Event::ArrsRulesPublished(rules) = &publication.event else {
                panic!("{:?}", publication.event);
            };
            assert_eq!(rules.effective_from.to_string(), from);
            assert_eq!(rules.link_worker_maximum_per_wte.to_string(), maximum);
            assert_eq!(publication.version_before, 0);
            assert!(publication.stream.starts_with("arrs-rules-20"));
        }
    }

    #[test]
    fn the_example_reads_into_its_events() {
        let terms = read_terms(EXAMPLE).unwrap();
        let kinds: Vec<_> = terms
            .publications
            .iter()
            .map(|p| p.event.type_name())
            .collect();
        assert_eq!(
            kinds,
            [
                "budget.allocated",
                "budget.allocated",
                "agreement.signed",
                "agreement.signed",
                "agreement.amended",
                "capacity_grant.awarded"
            ]
        );
        let amendment = &terms.publications[4];
        assert_eq!(amendment.version_before, 1);
        assert!(amendment.stream.starts_with("agreement-"));
        assert!(terms.source.contains("Example"));
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_line() {
        let text = EXAMPLE.replacen("capacity = 12", "capacity = 12\ncapacty = 3", 1);
        let error = read_terms(&text).unwrap_err();
        assert!(error.message.contains("capacty"), "{error}");
        assert_eq!(
            error.line,
            line_of(&text, text.find("capacty").unwrap()),
            "{error}"
        );
    }

    #[test]
    fn an_unusable_tariff_is_refused_with_its_table_line_and_field() {
        let text = EXAMPLE.replacen("funded_sessions = 10", "", 1).replacen(
            "cap_per_referral = \"200.00\"",
            "",
            1,
        );
        let error = read_terms(&text).unwrap_err();
        assert_eq!(error.field, "tariff");
        assert!(error.message.contains("funded_sessions"), "{error}");
        let first_agreement = text.find("[[agreement]]").unwrap();
        assert_eq!(
            error.line,
            line_of(&text, first_agreement),
            "the line of its [[agreement]] header: {error}"
        );
    }

    #[test]
    fn versions_in_one_file_go_up_one_by_one() {
        let text = EXAMPLE.replacen("version = 2", "version = 3", 1);
        let error = read_terms(&text).unwrap_err();
        assert_eq!(error.field, "version");
        assert_eq!(
            error.line,
            line_of(&text, text.find("[[amendment]]").unwrap()),
            "{error}"
        );
        assert!(
            error.message.contains("version 3 follows version 1"),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_a_source_is_refused() {
        let error = read_terms("source = \" \"\n").unwrap_err();
        assert_eq!(error.field, "source");
    }
}
