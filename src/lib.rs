//! Minqing (民情): the service that wires the domain to an event store, an HTTP API and a CLI.
//!
//! # Layout
//! - [`config`]: typed settings.
//! - [`datadir`]: the lock that gives a data directory one owner (`serve`, `rebuild`).
//! - [`store`]: the event store port and its backends (embedded SQLite by default).
//! - [`app`]: the command service (load, decide, append, follow-ups), the event codec, the
//!   view layer every edge renders (`app::views`) and the one classification of failures
//!   (`app::failure`).
//! - [`directory`]: units, users, password hashes, bearer sessions.
//! - [`access`]: the login path (lock-out, bounded password hashing) and the audit of access
//!   (the `security` stream).
//! - [`dispatch`]: the dispatch catalogue (派单目录) and the segmentation of requests for
//!   routing suggestions.
//! - [`http`]: the axum API, problem+json errors, the OpenAPI document.
//! - [`web`]: the workbench's pages (askama templates, htmx, cookie sessions with CSRF),
//!   rendering the same views and commands as `http`; mounted by `http::router`.
//! - [`org_file`]: the units and staff lists as `.csv`/`.xlsx` files, planned into directory
//!   commands for `minqing import-org`, and exported in the same shape.
//! - [`kb`]: the knowledge-base service (article commands, the search index as a projection).
//! - [`case_search`]: the case-text index (title, content, address, replies) behind the case
//!   query's `q`, a projection of the store like the knowledge-base index.
//! - [`index_follower`]: one follower for both search indexes: catch-up, subscription, commits
//!   with the checkpoint in the commit payload, retries, rebuild.
//! - [`jobs`]: the scheduled jobs (cron): overdue sweep, daily report.
//! - [`projection_runner`]: keeps the read database (`projections`) current and answers its
//!   queries.
//! - [`server`]: start-up and graceful shutdown.
//! - [`connections`]: serving connections with a cap, header-read and idle timeouts.
//! - [`bench`]: `minqing bench`.
//! - [`generate`]: `minqing generate`, a synthetic year of hotline cases for benchmarks.
//! - [`migrate`]: `minqing migrate`, a data directory's event log into a PostgreSQL store.
//!
//! # Invariants
//! - Every change to a case is a `domain::decide` followed by one atomic append with the
//!   expected version; nothing else writes case streams.
//! - Only `http` knows the API's JSON shapes (the daily report's document, also written to
//!   files, is a view); only `store` knows SQL; nothing outside `http` imports `http` but the
//!   `server` that mounts it.

pub mod access;
pub mod app;
pub mod backup;
pub mod bench;
pub mod case_search;
pub mod config;
pub mod connections;
pub mod datadir;
pub mod directory;
pub mod directory_log;
pub mod dispatch;
pub mod generate;
pub mod http;
pub mod index_follower;
pub mod jobs;
pub mod kb;
pub mod migrate;
pub mod org_file;
pub mod org_import;
pub mod projection_runner;
pub mod rules_log;
pub mod server;
pub mod store;
pub mod web;
