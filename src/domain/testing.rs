//! Hand-built domain values for unit tests, here and in the store.

use super::types::now;
use super::*;

/// A user with this email, and two-factor authentication on or off.
pub fn user(email: &str, two_factor: bool) -> User {
    User {
        id: Id::generate(),
        email: Email::parse(email, "email").expect("a valid test email"),
        first_name: None,
        last_name: None,
        telephone: None,
        country: None,
        zipcode: None,
        two_factor_authentication_enabled: two_factor,
        created_on: now(),
        modified_on: now(),
    }
}

/// A standard account with a new id and default settings.
pub fn account() -> Account {
    Account {
        id: Id::generate(),
        name: "Test".into(),
        account_type: AccountType::Standard,
        created_on: now(),
        settings: AccountSettings::default(),
        managed_by: None,
    }
}
