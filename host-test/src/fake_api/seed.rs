//! Seeding: the policies an account holds before anything is sent, given
//! with the ids they have, so that a batch that deletes, patches or
//! replaces them finds them. A seed is checked in full and stored all or
//! none.
//!
//! A seed document maps each account id to its policies:
//! `{"<account_id>": [policy, ...], ...}`. A policy has every field a create
//! has (`pattern_type` may also be `UNKNOWN`, and an IP pattern need not be
//! globally reachable: seeds stand for policies made before those rules),
//! and may give its `id`; one without gets a new id, as a create would.
//! Every problem is reported with its JSON Pointer in the document.

use std::fmt;

use serde_json::{Map, Value};

use super::batch::{complete, parse_changes, Kind, PolicyBody, PolicyId};
use super::code;
use super::envelope::{pointer, ApiError};
use super::store::{is_account_id, Policy, State};

/// One policy of a seed, checked, with where it was in the document.
pub(super) struct SeedPolicy {
    at: String,
    id: Option<PolicyId>,
    body: PolicyBody,
}

/// The checked policies of one account.
pub(super) struct AccountSeed {
    account: String,
    policies: Vec<SeedPolicy>,
}

/// A seed document refused: every problem, each at its JSON Pointer in the
/// document, so that a person can find and fix them all at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRefused {
    /// The problems, in document order.
    pub problems: Vec<SeedProblem>,
}

/// One reason a seed document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedProblem {
    /// The fake's error code ([`code`]), as the seed endpoint reports it.
    pub code: u32,
    /// Where in the document, as a JSON Pointer (`""` is the whole document).
    pub pointer: String,
    /// What is wrong there, and what was expected.
    pub message: String,
}

impl SeedRefused {
    pub(super) fn from_errors(errors: &[ApiError]) -> SeedRefused {
        SeedRefused {
            problems: errors
                .iter()
                .map(|e| SeedProblem {
                    code: e.code,
                    pointer: e.pointer.clone().unwrap_or_default(),
                    message: e.message.clone(),
                })
                .collect(),
        }
    }
}

impl fmt::Display for SeedRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "the seed document has {count} problem{}: ",
            if count == 1 { "" } else { "s" }
        )?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let at = if problem.pointer.is_empty() {
                "(the document)"
            } else {
                &problem.pointer
            };
            write!(f, "{at}: {}", problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for SeedRefused {}

/// Whether a seed may give integer ids: the older API's, which only a fake
/// started with legacy ids lets a batch name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum IntegerIds {
    Accepted,
    /// Refused, with a message that names `--legacy-ids`: a policy no
    /// batch could ever reach is a mistake in the seed.
    NeedLegacyIds,
}

/// Every account of a seed document, or every problem it has.
pub(super) fn parse_document(
    document: &Value,
    integer_ids: IntegerIds,
) -> Result<Vec<AccountSeed>, Vec<ApiError>> {
    let Value::Object(accounts) = document else {
        return Err(vec![ApiError::at(
            code::INVALID_SEED,
            "must be an object mapping account ids to arrays of policies, \
             such as {\"023e105f4ecef8ad9ca31a8372d0c353\": [...]}",
            "",
        )]);
    };
    let mut errors = Vec::new();
    let mut seeds = Vec::new();
    for (account, policies) in accounts {
        let at = pointer("", account);
        if !is_account_id(account) {
            errors.push(ApiError::at(
                code::INVALID_SEED,
                "is not an account id: 32 lowercase hexadecimal characters",
                at.clone(),
            ));
        }
        let Value::Array(policies) = policies else {
            errors.push(ApiError::at(
                code::INVALID_SEED,
                "must be an array of policies",
                at,
            ));
            continue;
        };
        seeds.push(parse_policies(
            account,
            &at,
            policies,
            integer_ids,
            &mut errors,
        ));
    }
    if errors.is_empty() {
        Ok(seeds)
    } else {
        Err(errors)
    }
}

/// The policies of one account, found at `at` (`""` for a bare list);
/// their problems are added to `errors`.
pub(super) fn parse_policies(
    account: &str,
    at: &str,
    policies: &[Value],
    integer_ids: IntegerIds,
    errors: &mut Vec<ApiError>,
) -> AccountSeed {
    let mut seed = AccountSeed {
        account: account.to_string(),
        policies: Vec::new(),
    };
    for (i, policy) in policies.iter().enumerate() {
        let at = format!("{at}/{i}");
        let Value::Object(fields) = policy else {
            errors.push(ApiError::at(
                code::INVALID_FIELD,
                "must be a policy object",
                at,
            ));
            continue;
        };
        let mut fields: Map<String, Value> = fields.clone();
        let id = match fields.remove("id") {
            None => Ok(None),
            Some(value) => parse_id(&value, integer_ids).map(Some),
        };
        let id = id.map_err(|message| {
            errors.push(ApiError::at(
                code::INVALID_FIELD,
                message,
                pointer(&at, "id"),
            ))
        });
        let changes = parse_changes(&fields, &at, Kind::Seed, true, errors);
        if let (Ok(id), Some(body)) = (id, complete(changes)) {
            seed.policies.push(SeedPolicy { at, id, body });
        }
    }
    seed
}

fn parse_id(value: &Value, integer_ids: IntegerIds) -> Result<PolicyId, String> {
    if integer_ids == IntegerIds::NeedLegacyIds && value.is_u64() {
        return Err(
            "is an integer id, as the older API had them: the fake takes those only \
                    when started with --legacy-ids; otherwise give a UUID string"
                .into(),
        );
    }
    PolicyId::parse(value, integer_ids == IntegerIds::Accepted).map_err(str::to_string)
}

/// Stores every policy of `seeds` after the account's own, all or none: an
/// id the account already has, or one the seed gives twice, refuses the
/// whole seed. Returns each account's policies as stored, in seed order.
pub(super) fn store(
    state: &mut State,
    seeds: Vec<AccountSeed>,
    legacy_ids: bool,
) -> Result<Vec<(String, Vec<Value>)>, Vec<ApiError>> {
    let mut errors = Vec::new();
    for seed in &seeds {
        let existing = state.accounts.get(&seed.account);
        for (i, policy) in seed.policies.iter().enumerate() {
            let Some(id) = &policy.id else { continue };
            let earlier = seed.policies[..i]
                .iter()
                .find(|p| p.id.as_ref().is_some_and(|other| other.matches(id)));
            let message = if let Some(earlier) = earlier {
                format!("{id} is given twice: also at {}/id", earlier.at)
            } else if existing.is_some_and(|list| list.iter().any(|p| p.id.matches(id))) {
                format!("the account already has a policy with id {id}")
            } else {
                continue;
            };
            errors.push(ApiError::at(
                code::SEED_ID_TAKEN,
                message,
                pointer(&policy.at, "id"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let stamp = state.next_stamp();
    let mut stored = Vec::new();
    for seed in seeds {
        let mut policies = state
            .accounts
            .get(&seed.account)
            .cloned()
            .unwrap_or_default();
        let before = policies.len();
        let given: Vec<PolicyId> = seed.policies.iter().filter_map(|p| p.id.clone()).collect();
        for id in &given {
            state.saw_id(id);
        }
        for policy in seed.policies {
            let id = match policy.id {
                Some(id) => id,
                None => state.new_id(legacy_ids, |id| {
                    policies.iter().any(|p| p.id.matches(id)) || given.iter().any(|g| g.matches(id))
                }),
            };
            policies.push(Policy::create(id, policy.body, &stamp));
        }
        stored.push((
            seed.account.clone(),
            policies[before..].iter().map(Policy::to_json).collect(),
        ));
        state.accounts.insert(seed.account, policies);
    }
    Ok(stored)
}

/// A seed document checked and stored, as `POST /__fake/seed` and
/// `--seed` take it: integer ids only with `legacy_ids`.
pub(super) fn check_and_store(
    state: &mut State,
    document: &Value,
    legacy_ids: bool,
) -> Result<Vec<(String, Vec<Value>)>, Vec<ApiError>> {
    let integer_ids = if legacy_ids {
        IntegerIds::Accepted
    } else {
        IntegerIds::NeedLegacyIds
    };
    let seeds = parse_document(document, integer_ids)?;
    store(state, seeds, legacy_ids)
}
