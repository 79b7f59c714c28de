//! Changes the scenario tests push, and the commit ids they use.

/// An AWS key (R01, BLOCK) in an added line.
pub const SECRET_PATCH: &str = concat!(
    // Split so that this file holds no real-format token itself.
    "@@ -0,0 +1,3 @@\n+import os\n+AWS_KEY = \"AKIA",
    "Z7Q3XK2M4N5P6R7T\"\n+print(os.name)"
);
/// A CI workflow change (R09, OVERRIDE tier), for `.github/workflows/`.
pub const WORKFLOW_PATCH: &str = "@@ -0,0 +1,2 @@\n+on: push\n+jobs: {}";

/// A head commit id made from a number.
pub fn sha(n: u32) -> String {
    format!("{n:040x}")
}

/// The base commit of the test pull requests.
pub fn base_sha() -> String {
    "2222222222222222222222222222222222222222".to_owned()
}
