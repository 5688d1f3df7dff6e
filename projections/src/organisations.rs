//! The organisation directory: every organisation registered with the ledger, by code, as its
//! latest `organisation.registered` describes it.

use std::collections::BTreeMap;

use followfund_contracts::events::OrganisationRegistered;
use followfund_contracts::{Event, Nation, OdsCode, Role};
use serde::{Deserialize, Serialize};

use crate::Fact;

/// One organisation taking part in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    /// Its ODS code, or the id the ledger assigned it in the same shape.
    pub code: OdsCode,
    /// Its trading name, for display.
    pub name: String,
    /// The part it plays, which decides what it may record and read.
    pub role: Role,
    /// The nation whose rules apply to it.
    pub nation: Nation,
    /// The organisation it reports to, if any.
    pub parent: Option<OdsCode>,
    /// The position of the registration now in force, so that a reader can be pointed to it.
    pub registered_position: u64,
}

/// Every registered organisation, keyed and iterated in code order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisations {
    by_code: BTreeMap<OdsCode, Organisation>,
}

impl Organisations {
    /// Folds one fact; only `organisation.registered` concerns the directory.
    pub(crate) fn apply(&mut self, fact: &Fact) {
        if let Event::OrganisationRegistered(registration) = &fact.event {
            self.register(fact.position, registration);
        }
    }

    /// Registering a code again replaces what was known of it. Registration is the only event
    /// that describes an organisation, so a rename, a new parent after a merger of ICBs, or a
    /// corrected nation is recorded by registering again; the latest registration is the truth.
    fn register(&mut self, position: u64, registration: &OrganisationRegistered) {
        let organisation = Organisation {
            code: registration.organisation.clone(),
            name: registration.name.clone(),
            role: registration.role,
            nation: registration.nation,
            parent: registration.parent.clone(),
            registered_position: position,
        };
        self.by_code.insert(organisation.code.clone(), organisation);
        debug_assert_eq!(
            self.by_code[&registration.organisation].registered_position,
            position
        );
    }

    /// The organisation with this code, if it is registered.
    pub fn get(&self, code: &OdsCode) -> Option<&Organisation> {
        self.by_code.get(code)
    }

    /// The organisations currently registered in this role, in code order. A directory holds
    /// thousands of organisations, not millions, so a scan is cheaper to keep right than an index.
    pub fn by_role(&self, role: Role) -> impl Iterator<Item = &Organisation> + use<'_> {
        self.iter()
            .filter(move |organisation| organisation.role == role)
    }

    /// Every organisation, in code order.
    pub fn iter(&self) -> impl Iterator<Item = &Organisation> + use<'_> {
        self.by_code.values()
    }

    /// How many organisations are registered.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether no organisation is registered yet.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// Each organisation is filed under its own code.
    pub fn assert_consistent(&self) {
        for (code, organisation) in &self.by_code {
            assert_eq!(code, &organisation.code, "organisations are keyed by code");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{History, ods, registered};

    #[test]
    fn registered_organisations_are_found_by_code_and_by_role_in_code_order() {
        let mut history = History::new();
        history.push(registered("PROV2", Role::Provider));
        history.push(registered("ANCHOR1", Role::Anchor));
        history.push(registered("PROV1", Role::Provider));
        let models = history.fold();
        let directory = &models.organisations;

        let anchor = directory.get(&ods("ANCHOR1")).unwrap();
        assert_eq!(anchor.role, Role::Anchor);
        assert_eq!(anchor.registered_position, 2);
        let providers: Vec<&str> = directory
            .by_role(Role::Provider)
            .map(|organisation| organisation.code.as_str())
            .collect();
        assert_eq!(providers, ["PROV1", "PROV2"]);
        let all: Vec<&str> = directory.iter().map(|o| o.code.as_str()).collect();
        assert_eq!(all, ["ANCHOR1", "PROV1", "PROV2"]);
        assert!(directory.get(&ods("NOBODY")).is_none());
    }

    #[test]
    fn registering_a_code_again_keeps_the_latest_registration() {
        let mut history = History::new();
        history.push(registered("PROV1", Role::Provider));
        let mut renamed = registered("PROV1", Role::Anchor);
        if let Event::OrganisationRegistered(registration) = &mut renamed {
            registration.name = "Riverside Walks CIC".to_owned();
            registration.parent = Some(ods("QWO"));
        }
        history.push(renamed);
        let models = history.fold();

        assert_eq!(models.organisations.len(), 1);
        let organisation = models.organisations.get(&ods("PROV1")).unwrap();
        assert_eq!(organisation.name, "Riverside Walks CIC");
        assert_eq!(organisation.role, Role::Anchor);
        assert_eq!(organisation.parent, Some(ods("QWO")));
        assert_eq!(organisation.registered_position, 2);
        assert_eq!(models.organisations.by_role(Role::Provider).count(), 0);
    }
}
