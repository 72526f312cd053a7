//! End-to-end tests: the real `minqing` binary on `127.0.0.1:0` with a temporary data
//! directory, driven over HTTP as a client would. One test binary (STYLE.md section 6).

mod helpers;
mod inprocess;

mod admin;
mod any_city;
mod backup;
mod bad_input;
mod browser;
mod browser_admin;
mod browser_case;
mod browser_intake;
mod browser_oversight;
mod browser_query;
mod case_search;
mod concurrency;
mod confidentiality;
mod connections;
mod crash;
mod datadir;
mod drafts;
mod flows;
mod former_holders;
mod generate;
#[cfg(feature = "postgres")]
mod instances;
mod kb;
#[cfg(feature = "kurrentdb")]
mod kurrent;
mod limits;
mod login_guard;
#[cfg(feature = "postgres")]
mod migrate;
mod openapi;
mod oversight;
mod queries;
mod reports;
mod routing;
mod rules_catalogue;
mod scopes;
mod service;
mod shutdown;
mod storage;
mod web;
mod web_case;
mod web_query;
mod worklists;
