//! The life of an override request: pending until enough approvals, or closed by a rejection,
//! a cancellation or expiry.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Waiting for approvals.
    Pending,
    /// In force: the violations it covers no longer fail the check.
    Approved,
    Rejected,
    /// Withdrawn by the requester (or an approver).
    Cancelled,
    /// No longer decidable, e.g. because the pull request was closed; the caller decides when.
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Cancelled => "cancelled",
            RequestStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition the request's status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("this override request is already {status}")]
    Closed { status: RequestStatus },
    #[error("@{login} has already approved this override request")]
    AlreadyApproved { login: String },
}

/// Where a request stands: its status and the approvals given so far. Approvers are checked by
/// [`may_decide`](super::may_decide) before their approval is counted here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestProgress {
    pub status: RequestStatus,
    pub required_approvals: u32,
    /// Logins in the order they approved, each once (compared case-insensitively).
    pub approved_by: Vec<String>,
}

impl RequestProgress {
    /// A request waiting for `required_approvals` approvals.
    pub fn pending(required_approvals: u32) -> Self {
        Self {
            status: RequestStatus::Pending,
            required_approvals,
            approved_by: Vec::new(),
        }
    }

    /// A request approved at once by its requester (OVERRIDE-tier violations only).
    pub fn self_service(requester: &str) -> Self {
        Self {
            status: RequestStatus::Approved,
            required_approvals: 1,
            approved_by: vec![requester.to_owned()],
        }
    }

    /// Counts an approval by `login`; the request is approved once enough distinct approvers
    /// have approved. Returns the new status.
    pub fn approve(&mut self, login: &str) -> Result<RequestStatus, TransitionError> {
        self.require_pending()?;
        if self
            .approved_by
            .iter()
            .any(|approver| approver.eq_ignore_ascii_case(login))
        {
            return Err(TransitionError::AlreadyApproved {
                login: login.to_owned(),
            });
        }
        self.approved_by.push(login.to_owned());
        if self.missing_approvals() == 0 {
            self.status = RequestStatus::Approved;
        }
        Ok(self.status)
    }

    /// One rejection rejects a pending request, whatever approvals it already has.
    pub fn reject(&mut self) -> Result<(), TransitionError> {
        self.require_pending()?;
        self.status = RequestStatus::Rejected;
        Ok(())
    }

    /// Withdraws a pending or approved request; an approved one stops covering its violations.
    pub fn cancel(&mut self) -> Result<(), TransitionError> {
        match self.status {
            RequestStatus::Pending | RequestStatus::Approved => {
                self.status = RequestStatus::Cancelled;
                Ok(())
            }
            status => Err(TransitionError::Closed { status }),
        }
    }

    /// Closes a pending request that can no longer be decided.
    pub fn expire(&mut self) -> Result<(), TransitionError> {
        self.require_pending()?;
        self.status = RequestStatus::Expired;
        Ok(())
    }

    /// Approvals still needed; zero once approved.
    pub fn missing_approvals(&self) -> u32 {
        let given = u32::try_from(self.approved_by.len()).unwrap_or(u32::MAX);
        self.required_approvals.saturating_sub(given)
    }

    fn require_pending(&self) -> Result<(), TransitionError> {
        match self.status {
            RequestStatus::Pending => Ok(()),
            status => Err(TransitionError::Closed { status }),
        }
    }
}
