//! Tollgate scores pull requests against Rego policies and enforces the result.

pub mod config;
pub mod diff;
pub mod domain;
pub mod policy;
