//! Roster: a self-hosted, wire-compatible implementation of Cloudflare's v4 API for account
//! memberships and account members.
//!
//! A request passes through the layers in this order:
//! - [`api`]: the router, extractors, the v4 envelope and the one error type;
//! - [`auth`]: turns `X-Auth-Email`/`X-Auth-Key` or a bearer token into a [`domain::Caller`];
//! - [`domain`]: the objects and rules (no HTTP, no SQL);
//! - [`store`]: the one storage trait and its SQLite and PostgreSQL backends.
//!
//! [`server`] accepts connections and hands requests to the router; [`fixture`] loads demo
//! data and seed files; [`cli`] is the operator's command line; `log_output` writes
//! `roster serve`'s log; `progress` shows a long command's progress.

pub mod api;
pub mod auth;
pub mod cli;
pub mod console;
pub mod domain;
pub mod fixture;
mod log_output;
mod progress;
pub mod server;
pub mod store;
