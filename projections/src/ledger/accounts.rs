//! Accounts and postings: every movement of money is one posting that debits one account and
//! credits another by the same amount, and names the fact and tariff clause that caused it.

use followfund_contracts::terms::{Clause, FinancialYear};
use followfund_contracts::{Money, OdsCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::compact::Listed;
use crate::interner::Interner;
use crate::numbered::Number;

/// What an account holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A commissioner's funding, credited as it is allocated to anchors.
    Funding,
    /// An anchor's activities budget not yet committed.
    Budget,
    /// An anchor's budget set aside for issued prescriptions.
    Committed,
    /// What an anchor owes a provider for work done and not yet paid.
    Payable,
    /// What an anchor has paid a provider.
    Paid,
    /// What a provider owes back for work retracted after it was paid.
    Recovery,
    /// The cost of activities an anchor delivered itself: spent, with no transfer.
    SelfDelivered,
    /// An anchor's capacity-building budget not yet granted.
    CapacityBudget,
    /// Capacity-building grants made to a provider.
    Granted,
}

impl AccountKind {
    /// The kind's name in account keys.
    pub fn key(self) -> &'static str {
        match self {
            AccountKind::Funding => "funding",
            AccountKind::Budget => "budget",
            AccountKind::Committed => "committed",
            AccountKind::Payable => "payable",
            AccountKind::Paid => "paid",
            AccountKind::Recovery => "recovery",
            AccountKind::SelfDelivered => "self_delivered",
            AccountKind::CapacityBudget => "capacity_budget",
            AccountKind::Granted => "granted",
        }
    }
}

/// One account: a kind, the organisation it belongs to, the counterparty where there is one
/// (the provider of a payable), and the financial year.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Account {
    /// What it holds.
    pub kind: AccountKind,
    /// Whose it is.
    pub organisation: OdsCode,
    /// The other party, for accounts between two organisations.
    pub counterparty: Option<OdsCode>,
    /// The financial year it belongs to.
    pub financial_year: FinancialYear,
}

impl Account {
    /// An account with no counterparty.
    pub fn of(kind: AccountKind, organisation: &OdsCode, financial_year: FinancialYear) -> Account {
        Account {
            kind,
            organisation: organisation.clone(),
            counterparty: None,
            financial_year,
        }
    }

    /// An account of `organisation` with `counterparty`.
    pub fn between(
        kind: AccountKind,
        organisation: &OdsCode,
        counterparty: &OdsCode,
        financial_year: FinancialYear,
    ) -> Account {
        Account {
            kind,
            organisation: organisation.clone(),
            counterparty: Some(counterparty.clone()),
            financial_year,
        }
    }

    /// A stable text key, such as `payable:ANC01:VCS01:2026/27`.
    pub fn key(&self) -> String {
        let kind = self.kind.key();
        match &self.counterparty {
            Some(other) => format!(
                "{kind}:{}:{}:{}",
                self.organisation.as_str(),
                other.as_str(),
                self.financial_year
            ),
            None => format!(
                "{kind}:{}:{}",
                self.organisation.as_str(),
                self.financial_year
            ),
        }
    }
}

/// An account's number in the ledger: postings name accounts by it, because a national year
/// makes tens of millions of postings between a few thousand accounts. Held as a [`Number`],
/// which counts from one, so that an account not yet numbered costs nothing: a funding keeps
/// two `Option<AccountId>`, four bytes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(Number);

const _: () = assert!(std::mem::size_of::<Option<AccountId>>() == 4);

impl AccountId {
    /// The account's number.
    pub(super) fn number(self) -> u32 {
        self.0.index()
    }

    /// The account's number as the numbers other records hold are kept.
    pub(super) fn as_number(self) -> Number {
        self.0
    }

    /// The account of that number.
    pub(super) fn of_number(number: Number) -> AccountId {
        AccountId(number)
    }

    /// The account numbered `number`, unless it is the largest number, which none may have.
    pub(super) fn try_numbered(number: u32) -> Option<AccountId> {
        Number::at_index(number).map(AccountId)
    }

    /// The account numbered `number`, which [`AccountId::try_numbered`] holds.
    pub(super) fn numbered(number: u32) -> AccountId {
        AccountId::try_numbered(number).expect("an account number below 2^32 - 1")
    }
}

/// Written as its number.
impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.number())
    }
}

/// Read as its number, refusing the one number that cannot be held.
impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<AccountId, D::Error> {
        let number = u32::deserialize(deserializer)?;
        AccountId::try_numbered(number)
            .ok_or_else(|| serde::de::Error::custom("an account number is too large"))
    }
}

/// Every account posted to, numbered in the order first used, with its balance (debits less
/// credits) in pence: postings are to the penny, and whole numbers add in an instruction where
/// decimals took dozens, twice for every posting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Accounts {
    names: Interner<Account>,
    balances_pence: Vec<i64>,
}

impl Accounts {
    /// The number of `account`, numbering it if it is new.
    pub(crate) fn id(&mut self, account: &Account) -> AccountId {
        let id = self.names.id(account);
        if self.balances_pence.len() < self.names.len() {
            self.balances_pence.push(0);
        }
        assert_eq!(
            self.balances_pence.len(),
            self.names.len(),
            "a balance per account"
        );
        AccountId::numbered(id)
    }

    /// The number of `account`, if it has been posted to.
    #[cfg(test)]
    pub(crate) fn number(&self, account: &Account) -> Option<AccountId> {
        self.names.find(account).map(AccountId::numbered)
    }

    /// The account numbered `id`.
    pub(crate) fn get(&self, id: AccountId) -> &Account {
        self.names.get(id.number())
    }

    /// The balance of an account; zero for one never posted to.
    pub(crate) fn balance(&self, account: &Account) -> Money {
        self.names.find(account).map_or_else(Money::zero, |id| {
            Money::from_pence(self.balances_pence[id as usize])
        })
    }

    /// Adds `pence` (negative for a credit) to an account's balance.
    pub(crate) fn change(&mut self, id: AccountId, pence: i64) {
        let balance = &mut self.balances_pence[id.number() as usize];
        *balance = balance
            .checked_add(pence)
            .expect("ledger sums stay far below 2^63 pence");
    }

    /// The sum of every balance: zero, always.
    pub(crate) fn balances_sum(&self) -> Money {
        Money::from_pence(self.balances_pence.iter().copied().fold(0, add))
    }

    /// The sum of the balances of `organisation`'s accounts of `kind` in `year`, whatever their
    /// counterparty.
    pub(crate) fn between_any(
        &self,
        kind: AccountKind,
        organisation: &OdsCode,
        year: FinancialYear,
    ) -> Money {
        // The account without a counterparty sorts before every account with one.
        let pence = self
            .names
            .range(Account::of(kind, organisation, year)..)
            .take_while(|(account, _)| {
                account.kind == kind && account.organisation == *organisation
            })
            .filter(|(account, _)| account.financial_year == year)
            .map(|(_, id)| self.balances_pence[id as usize])
            .fold(0, add);
        Money::from_pence(pence)
    }
}

fn add(a: i64, b: i64) -> i64 {
    a.checked_add(b)
        .expect("ledger sums stay far below 2^63 pence")
}

/// Why money moved: the fact, and the tariff clause or rule that priced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// The position of the fact in the log.
    pub position: u64,
    /// The day the fact happened, which places the amount in a month.
    pub on: chrono::NaiveDate,
    /// The event type of the fact.
    #[serde(deserialize_with = "crate::event_type::deserialize")]
    pub event_type: crate::event_type::Name,
    /// The prescription it concerns, if any.
    pub prescription_id: Option<Uuid>,
    /// The agreement version whose tariff priced it, if any.
    pub agreement_version: Option<u32>,
    /// The rule applied.
    pub rule: Rule,
}

/// The rule a posting applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A commissioner's allocation.
    Allocation,
    /// Issuing a prescription commits its maximum cost.
    Commitment,
    /// A price above what was committed: the difference is committed first.
    CommitmentTopUp,
    /// A tariff clause turned commitment into a payable.
    Tariff(Clause),
    /// A retraction reverses what a session earned.
    Reversal,
    /// A prescription that ended gives back what it did not use.
    Release,
    /// A capacity-building grant.
    Grant,
    /// A payment run settled a payable.
    Payment,
}

impl Listed for Rule {
    const ALL: &'static [Rule] = &[
        Rule::Allocation,
        Rule::Commitment,
        Rule::CommitmentTopUp,
        Rule::Tariff(Clause::EngagementFee),
        Rule::Tariff(Clause::SessionFee),
        Rule::Tariff(Clause::CompletionFee),
        Rule::Tariff(Clause::MissedSessionFee),
        Rule::Reversal,
        Rule::Release,
        Rule::Grant,
        Rule::Payment,
    ];
}

impl Rule {
    /// A short label, such as `tariff:session_fee` or `release`. A statement page writes
    /// hundreds of these, so each is a constant rather than formatted.
    pub fn label(self) -> &'static str {
        match self {
            Rule::Allocation => "allocation",
            Rule::Commitment => "commitment",
            Rule::CommitmentTopUp => "commitment_top_up",
            Rule::Tariff(Clause::EngagementFee) => "tariff:engagement_fee",
            Rule::Tariff(Clause::SessionFee) => "tariff:session_fee",
            Rule::Tariff(Clause::CompletionFee) => "tariff:completion_fee",
            Rule::Tariff(Clause::MissedSessionFee) => "tariff:missed_session_fee",
            Rule::Reversal => "reversal",
            Rule::Release => "release",
            Rule::Grant => "grant",
            Rule::Payment => "payment",
        }
    }
}

/// One double-entry posting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The account debited: see [`crate::Ledger::account`].
    pub debit: AccountId,
    /// The account credited.
    pub credit: AccountId,
    /// The amount, positive, to the penny.
    pub amount: Money,
    /// Why.
    pub cause: Cause,
}
