//! Stored override requests read back as the domain and report see them.

use crate::config::OverrideSettings;
use crate::domain::{ApprovedOverride, Fingerprint, Overrides};
use crate::overrides::{RequestProgress, RequestStatus};
use crate::report::PendingOverride;
use crate::store::OverrideRequestRow;
use std::collections::BTreeSet;

pub(super) fn status_of(row: &OverrideRequestRow) -> RequestStatus {
    match row.status.as_str() {
        "approved" => RequestStatus::Approved,
        "rejected" => RequestStatus::Rejected,
        "cancelled" => RequestStatus::Cancelled,
        "expired" => RequestStatus::Expired,
        _ => RequestStatus::Pending,
    }
}

pub(super) fn progress_of(row: &OverrideRequestRow) -> RequestProgress {
    RequestProgress {
        status: status_of(row),
        required_approvals: u32::try_from(row.required_approvals).unwrap_or(1),
        approved_by: row.approvals.clone(),
    }
}

/// The settings a request was made under (stored with it), so that a later change of the
/// repository config does not change who may decide it.
pub(super) fn settings_of(row: &OverrideRequestRow) -> OverrideSettings {
    serde_json::from_value(row.settings.clone()).unwrap_or_default()
}

fn fingerprints_of(row: &OverrideRequestRow) -> BTreeSet<Fingerprint> {
    row.fingerprints
        .iter()
        .map(|f| Fingerprint::from_stored(f.clone()))
        .collect()
}

/// The approved requests, as the verdict counts them.
pub(super) fn approved_overrides(rows: &[OverrideRequestRow]) -> Overrides {
    Overrides::new(
        rows.iter()
            .filter(|r| status_of(r) == RequestStatus::Approved)
            .map(|r| ApprovedOverride {
                fingerprints: fingerprints_of(r),
                requested_by: r.requested_by.clone(),
                approved_by: r.approvals.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
    )
}

/// The requests still waiting for approvals, for the report.
pub(super) fn pending_overrides(rows: &[OverrideRequestRow]) -> Vec<PendingOverride> {
    rows.iter()
        .filter(|r| status_of(r) == RequestStatus::Pending)
        .map(|r| PendingOverride {
            requested_by: r.requested_by.clone(),
            reason: r.reason.clone(),
            fingerprints: fingerprints_of(r),
            progress: progress_of(r),
            approvers: settings_of(r).approvers,
        })
        .collect()
}
