//! A statement line's explanations, answered in one pass over the selection rather than with a
//! future and a map lookup per field: a page of 50 lines carries about 650 of them, and the
//! general executor spent most of the page's time on them. Each is kept as the ledger's parts
//! until the answer is written, so that each string is made once, in the answer.

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ServerResult, SimpleObject, Value,
};
use followfund_contracts::money::Money;
use followfund_projections::Rule;

/// Why an amount moved: the fact at a position, the rule or tariff clause, and the accounts.
#[derive(SimpleObject)]
pub struct Explanation {
    /// The position of the fact in the log.
    position: u64,
    /// Its event type.
    event_type: String,
    /// The rule or tariff clause applied.
    rule: String,
    /// The agreement version whose tariff priced it.
    agreement_version: Option<u32>,
    /// The amount.
    amount: String,
    /// The account debited.
    debit: String,
    /// The account credited.
    credit: String,
}

/// One explanation as the ledger has it; the account keys are shared by a page's lines.
pub struct Why {
    /// The position of the fact in the log.
    pub position: u64,
    /// Its event type.
    pub event_type: &'static str,
    /// The rule or tariff clause applied.
    pub rule: Rule,
    /// The agreement version whose tariff priced it.
    pub agreement_version: Option<u32>,
    /// The amount.
    pub amount: Money,
    /// The key of the account debited.
    pub debit: Arc<str>,
    /// The key of the account credited.
    pub credit: Arc<str>,
}

impl Why {
    fn explanation(&self) -> Explanation {
        Explanation {
            position: self.position,
            event_type: self.event_type.to_owned(),
            rule: self.rule.label().to_owned(),
            agreement_version: self.agreement_version,
            amount: self.amount.to_string(),
            debit: self.debit.to_string(),
            credit: self.credit.to_string(),
        }
    }
}

/// The field of an [`Explanation`] a selection names.
#[derive(Clone, Copy)]
enum Part {
    Position,
    EventType,
    Rule,
    AgreementVersion,
    Amount,
    Debit,
    Credit,
    Typename,
}

impl Part {
    fn named(name: &str) -> Option<Part> {
        Some(match name {
            "position" => Part::Position,
            "eventType" => Part::EventType,
            "rule" => Part::Rule,
            "agreementVersion" => Part::AgreementVersion,
            "amount" => Part::Amount,
            "debit" => Part::Debit,
            "credit" => Part::Credit,
            "__typename" => Part::Typename,
            _ => return None,
        })
    }
}

impl Why {
    /// The answer for `parts`, as the general executor writes it.
    fn value(&self, parts: &[(Name, Part)]) -> Value {
        let mut answer = async_graphql::indexmap::IndexMap::with_capacity(parts.len());
        for (key, part) in parts {
            let value = match part {
                Part::Position => Value::from(self.position),
                Part::EventType => Value::String(self.event_type.to_owned()),
                Part::Rule => Value::String(self.rule.label().to_owned()),
                Part::AgreementVersion => self.agreement_version.map_or(Value::Null, Value::from),
                Part::Amount => Value::String(self.amount.to_string()),
                Part::Debit => Value::String(self.debit.to_string()),
                Part::Credit => Value::String(self.credit.to_string()),
                Part::Typename => Value::String("Explanation".into()),
            };
            // A key asked twice names the same field twice (validation refuses anything else),
            // and the answer keeps it where it was first asked.
            answer.entry(key.clone()).or_insert(value);
        }
        Value::Object(answer)
    }
}

/// The response keys and fields of a selection made only of plain fields; `None` when it holds
/// a fragment or a directive, which the general executor answers instead.
fn plain_parts(selection: &SelectionSet) -> Option<Vec<(Name, Part)>> {
    selection
        .items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) if field.node.directives.is_empty() => {
                let part = Part::named(field.node.name.node.as_str())?;
                Some((field.node.response_key().node.clone(), part))
            }
            _ => None,
        })
        .collect()
}

/// A line's explanations, in the order they were posted.
pub struct Explanations(pub Vec<Why>);

impl OutputType for Explanations {
    fn type_name() -> Cow<'static, str> {
        Vec::<Explanation>::type_name()
    }

    fn qualified_type_name() -> String {
        Vec::<Explanation>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Vec::<Explanation>::create_type_info(registry)
    }

    // The schema has no extensions, whose per-field hooks this pass would skip.
    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match plain_parts(&field.node.selection_set.node) {
            Some(parts) => Ok(Value::List(
                self.0.iter().map(|e| e.value(&parts)).collect(),
            )),
            None => {
                let explanations: Vec<Explanation> = self.0.iter().map(Why::explanation).collect();
                explanations.resolve(ctx, field).await
            }
        }
    }
}
