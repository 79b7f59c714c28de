//! Who may see and do what, per installation (pure). Decided at login from what GitHub says of
//! the user, and kept in the session.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Has access to a repository of the installation: reads everything of it.
    Viewer,
    /// Org owner, the owner of a personal account, or listed under `dashboard.admins`: also acts.
    Admin,
}

/// One installation a user may open, with their role there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationAccess {
    pub installation_id: i64,
    pub account: String,
    pub role: Role,
}

/// What GitHub told about the user and one installation they can reach.
pub struct Standing<'a> {
    pub login: &'a str,
    pub account: &'a str,
    /// `Organization` or `User`.
    pub account_kind: &'a str,
    /// An active owner (`role: admin`) of the organization.
    pub org_owner: bool,
    /// The `dashboard.admins` logins the user matched (directly or through a team).
    pub listed_admin: bool,
}

/// Anyone GitHub lists the installation for is a viewer; owners and listed admins are admins.
pub fn role_of(standing: &Standing<'_>) -> Role {
    let owns_personal_account =
        standing.account_kind == "User" && standing.account.eq_ignore_ascii_case(standing.login);
    if owns_personal_account || standing.org_owner || standing.listed_admin {
        Role::Admin
    } else {
        Role::Viewer
    }
}

/// The user's role in an installation, or `None` when they may not see it at all (and are told
/// "not found", so the installation's existence is not revealed).
pub fn role_in(access: &[InstallationAccess], installation_id: i64) -> Option<Role> {
    access
        .iter()
        .find(|a| a.installation_id == installation_id)
        .map(|a| a.role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing<'a>(login: &'a str, account: &'a str, kind: &'a str) -> Standing<'a> {
        Standing {
            login,
            account,
            account_kind: kind,
            org_owner: false,
            listed_admin: false,
        }
    }

    #[test]
    fn members_view_and_owners_administer() {
        assert_eq!(
            role_of(&standing("alice", "acme", "Organization")),
            Role::Viewer
        );
        let owner = Standing {
            org_owner: true,
            ..standing("alice", "acme", "Organization")
        };
        assert_eq!(role_of(&owner), Role::Admin);
        let listed = Standing {
            listed_admin: true,
            ..standing("alice", "acme", "Organization")
        };
        assert_eq!(role_of(&listed), Role::Admin);
        assert_eq!(role_of(&standing("Alice", "alice", "User")), Role::Admin);
        assert_eq!(role_of(&standing("bob", "alice", "User")), Role::Viewer);
    }

    #[test]
    fn installations_outside_the_access_list_are_invisible() {
        let access = vec![InstallationAccess {
            installation_id: 1,
            account: "acme".into(),
            role: Role::Admin,
        }];
        assert_eq!(role_in(&access, 1), Some(Role::Admin));
        assert_eq!(role_in(&access, 2), None);
    }
}
