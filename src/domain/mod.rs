//! The domain: Roster's objects and the rules that govern them, with no HTTP and no SQL.
//! The store loads an account's state, the rules here decide what a request may change,
//! and the store writes that change in the same transaction, so the rules have one code
//! path whatever database is underneath.

pub mod audit;
pub mod catalog;
pub mod clock;
pub mod list;
pub mod model;
pub mod permissions;
pub mod rules;
#[cfg(test)]
pub mod testing;
#[macro_use]
pub mod types;
pub mod tokens;

pub use model::*;
pub use rules::{
    AccountCatalog, AccountState, Caller, Change, Focus, Gift, Need, NewMember, activation_code,
};
pub use types::{AccountType, Direction, Email, Id, Status};

/// Why the domain refused a request. Each maps to one Cloudflare error in `api::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("Unauthorized to access requested resource")]
    Forbidden,
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0} already has a pending or accepted membership in this account")]
    AlreadyMember(String),
    #[error("This membership is already {0} and can no longer be changed")]
    NotPending(&'static str),
    #[error("This invitation expired on {0}; an administrator of the account can invite you again")]
    InvitationExpired(String),
    #[error(
        "This account requires two-factor authentication: the user must enable it before joining"
    )]
    TwoFactorRequired,
    #[error(
        "The account must keep at least one accepted member who can manage memberships (organization write, e.g. Super Administrator)"
    )]
    LastAdministrator,
    #[error(
        "Resource group is used by a member's or a user group's policy; change those policies first"
    )]
    ResourceGroupInUse,
    #[error("{0} already exists")]
    Duplicate(String),
    /// A change would give more than the caller holds in the account.
    #[error(
        "You may not give {0}: whoever gives roles, policies, group membership or token policies gives at most the rights they hold in this account"
    )]
    BeyondOwnRights(String),
    #[error(
        "Only a Super Administrator may change what a Super Administrator may do, or remove one"
    )]
    SuperAdministratorsOnly,
}

impl DomainError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}
