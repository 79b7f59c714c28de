//! Tollgate scores pull requests against Rego policies and enforces the result.

pub mod app;
pub mod check;
pub mod clock;
pub mod commands;
pub mod config;
pub mod diff;
pub mod domain;
pub mod github;
pub mod intake;
pub mod jobs;
pub mod notify;
pub mod operations;
pub mod outbound;
pub mod overrides;
pub mod policy;
pub mod policy_tests;
pub mod report;
pub mod setup;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod web;
