//! The GitHub edge: webhook payloads → events, app authentication, and the REST client with
//! a write budget per installation shared by every process.

pub mod auth;
pub mod client;
pub mod error;
pub mod events;
pub mod oauth;
pub mod pacer;
pub mod server;
mod transport;

pub use auth::AppCredentials;
pub use client::{
    Account, Annotation, AnnotationLevel, BranchRef, ChangedFiles, CheckOutput, CheckRunCreate,
    CheckRunUpdate, CheckStatus, CollaboratorPermission, Conclusion, GithubApp, HookDelivery,
    HookDeliveryPage, InstallationClient, IssueComment, Label, MAX_ANNOTATIONS_PER_REQUEST,
    PullRequest, PullRequestState, Reaction, TeamMembership,
};
pub use error::GithubError;
pub use pacer::{Pacing, WriteBudget};
