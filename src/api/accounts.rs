//! `/accounts`: the accounts the caller belongs to, creating one, and its settings.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::extract::{Auth, Body, Ids, Params, not_null};
use super::{ApiError, AppState, views};
use crate::domain::list::{paginate, same_name, text_key};
use crate::domain::types::{DefaultNameservers, bounded, now};
use crate::domain::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v4!("/accounts"), get(list).post(create))
        .route(
            v4!("/accounts/{account_id}"),
            get(details).put(update).delete(remove),
        )
}

/// Accounts the caller may read: an accepted membership with organization read (and, for a
/// token, an account-settings group; a token without one lists nothing).
async fn list(
    State(app): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    let page = params.page()?;
    let direction = params.choice("direction")?.unwrap_or(Direction::Asc);
    let name = params.text("name", 100)?;
    let own_account: Vec<Account>;
    let memberships;
    let readable: Vec<&Account> = match caller.token_account() {
        // An account's token sees its own account, if its policies let it read it.
        Some(own) => {
            let state = app.load_account(own, &Focus::default()).await?;
            own_account = match state.authorize(&caller, Need::Read) {
                Ok(()) => vec![state.account],
                Err(_) => Vec::new(),
            };
            own_account.iter().collect()
        }
        None => {
            memberships = app
                .store
                .user_memberships(caller.user()?.email.folded())
                .await?;
            memberships
                .iter()
                .filter(|m| m.readable_by(&caller))
                .map(|m| &m.account)
                .collect()
        }
    };
    // Only the page's accounts are copied out, not every one the caller reads.
    let accounts: Vec<&Account> = readable
        .into_iter()
        .filter(|a| name.as_ref().is_none_or(|n| same_name(&a.name, n)))
        .collect();
    let page = paginate(
        accounts,
        page,
        direction,
        |a| text_key(Some(&a.name)),
        |a| a.id.as_str(),
    );
    Ok(views::list(&page, |a| views::account(a)))
}

async fn details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let state = app
        .read_account(&ids.one(), &Focus::caller(&caller), &caller)
        .await?;
    Ok(views::single(views::account(&state.account)))
}

#[derive(Deserialize)]
struct CreateAccount {
    name: String,
    #[serde(default, deserialize_with = "not_null", rename = "type")]
    account_type: Option<AccountType>,
}

async fn create(
    State(app): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<CreateAccount>,
) -> Result<Response, ApiError> {
    caller.require_token_group("Account Settings", Need::Write)?;
    // An account's type is the operator's (fixture or CLI): enterprise unlocks Direct Add.
    if body.account_type == Some(AccountType::Enterprise) {
        return Err(DomainError::invalid(
            "type",
            "type: accounts created through the API are standard; an operator makes an account enterprise",
        )
        .into());
    }
    let account_type = AccountType::Standard;
    let account = Account {
        id: Id::generate(),
        name: bounded(body.name.trim(), "name", 1, 100)?,
        account_type,
        created_on: now(),
        settings: AccountSettings::default(),
        managed_by: None,
    };
    let owner = account.founding_member(caller.user()?);
    app.store.create_account(&account, Some(&owner)).await?;
    Ok(views::single(views::account(&account)))
}

#[derive(Clone, Deserialize)]
struct UpdateAccount {
    /// The SDKs send the account's id again; one that names another account is refused.
    #[serde(default, deserialize_with = "not_null")]
    id: Option<String>,
    name: String,
    #[serde(default, deserialize_with = "not_null")]
    settings: Option<SettingsInput>,
}

#[derive(Clone, Deserialize)]
struct SettingsInput {
    #[serde(default, deserialize_with = "not_null")]
    enforce_twofactor: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    abuse_contact_email: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    default_nameservers: Option<DefaultNameservers>,
    #[serde(default, deserialize_with = "not_null")]
    use_account_custom_ns_by_default: Option<bool>,
}

impl UpdateAccount {
    fn apply(&self, current: &Account) -> Result<Account, DomainError> {
        if self
            .id
            .as_ref()
            .is_some_and(|id| Id::parse(id).as_ref() != Some(&current.id))
        {
            return Err(DomainError::invalid(
                "id",
                "id must be the account's own id",
            ));
        }
        let mut next = current.clone();
        next.name = bounded(self.name.trim(), "name", 1, 100)?;
        if let Some(s) = &self.settings {
            let settings = &mut next.settings;
            settings.enforce_twofactor = s.enforce_twofactor.unwrap_or(settings.enforce_twofactor);
            if let Some(email) = &s.abuse_contact_email {
                settings.abuse_contact_email = match email.trim() {
                    "" => None,
                    value => Some(
                        Email::parse(value, "settings.abuse_contact_email")?
                            .as_str()
                            .to_string(),
                    ),
                };
            }
            settings.default_nameservers = s
                .default_nameservers
                .unwrap_or(settings.default_nameservers);
            settings.use_account_custom_ns_by_default = s
                .use_account_custom_ns_by_default
                .unwrap_or(settings.use_account_custom_ns_by_default);
        }
        Ok(next)
    }
}

async fn update(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<UpdateAccount>,
) -> Result<Response, ApiError> {
    let account_id = ids.one();
    let written = app
        .change_account(&account_id, &Focus::caller(&caller), &caller, |state| {
            Ok(vec![Change::PutAccount(body.apply(&state.account)?)])
        })
        .await?;
    match written.changes.first() {
        Some(Change::PutAccount(account)) => Ok(views::single(views::account(account))),
        _ => Err(ApiError::Internal(
            "account update produced no account".into(),
        )),
    }
}

/// Deletes the account and everything in it, in one transaction: its members'
/// memberships leave their `/memberships` at once.
async fn remove(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let account_id = ids.one();
    app.change_account(&account_id, &Focus::caller(&caller), &caller, |state| {
        Ok(vec![state.delete_account(&caller)?])
    })
    .await?;
    Ok(views::single(views::IdOnly { id: &account_id }))
}
