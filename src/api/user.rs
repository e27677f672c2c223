//! `/user`: the caller's own profile.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Deserializer};

use super::extract::{Auth, Body};
use super::{ApiError, AppState, views};
use crate::domain::types::{bounded, now};
use crate::domain::{DomainError, Need};

pub fn router() -> Router<AppState> {
    Router::new().route(v4!("/user"), get(details).patch(edit))
}

async fn details(Auth(caller): Auth) -> Result<Response, ApiError> {
    caller.require_token_group("User Details", Need::Read)?;
    Ok(views::single(views::user(caller.user()?)))
}

/// `null` clears a field; an absent field leaves it as it is.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct EditUser {
    #[serde(default, deserialize_with = "present")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    telephone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    country: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    zipcode: Option<Option<String>>,
}

fn edit_field(
    target: &mut Option<String>,
    value: &Option<Option<String>>,
    field: &str,
    max: usize,
) -> Result<(), DomainError> {
    if let Some(value) = value {
        *target = value
            .as_deref()
            .map(|v| bounded(v.trim(), field, 0, max))
            .transpose()?
            .filter(|v| !v.is_empty());
    }
    Ok(())
}

async fn edit(
    State(app): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<EditUser>,
) -> Result<Response, ApiError> {
    caller.require_token_group("User Details", Need::Write)?;
    let user = app
        .store
        .edit_user(&caller.user()?.id, &|user| {
            edit_field(&mut user.first_name, &body.first_name, "first_name", 60)?;
            edit_field(&mut user.last_name, &body.last_name, "last_name", 60)?;
            edit_field(&mut user.telephone, &body.telephone, "telephone", 20)?;
            edit_field(&mut user.country, &body.country, "country", 30)?;
            edit_field(&mut user.zipcode, &body.zipcode, "zipcode", 20)?;
            user.modified_on = now();
            Ok(())
        })
        .await?;
    Ok(views::single(views::user(&user)))
}
