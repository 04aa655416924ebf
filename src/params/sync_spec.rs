//! The input's `sync` member, checked: the policies the account should
//! have, and the limits a plan must keep. The full reader fills it
//! ([`crate::params::validator`]); sync mode plans from it
//! ([`crate::run::sync_plan`]).

use crate::api::policy::{Policy, PolicyId};

/// Deletes a sync may plan unless `max_deletes` says otherwise.
pub const DEFAULT_MAX_DELETES: u32 = 50;

/// The input's `sync` member, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSpec {
    /// The policies the account should have, in the input's order.
    pub desired: Vec<Desired>,
    /// Delete the account's policies that no desired one stands for.
    pub delete_unlisted: bool,
    /// The most deletes a plan may have before it is refused.
    pub max_deletes: u32,
    /// Allow a plan that deletes more than half of the account's policies,
    /// or every one of them (an empty desired list).
    pub allow_deleting_most: bool,
}

/// One policy the account should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The existing policy it stands for, when the workflow knows it.
    pub id: Option<PolicyId>,
    /// Every field, as the policy should be.
    pub policy: Policy,
}
