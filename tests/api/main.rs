//! The API test suite: one binary, one fresh database per test, real TCP.

mod helpers;
#[path = "../common/openapi.rs"]
mod openapi;
#[path = "../common/results.rs"]
mod results;
mod schema;

mod account_tokens;
mod admin;
mod audit;
mod auth;
mod console;
mod contract;
mod emulator;
mod examples;
mod fuzz;
mod grants;
mod input;
mod invites;
mod lifecycle;
mod limits;
mod lists;
mod matrix;
mod smoke;
mod store;
mod tokens;
mod user_groups;
