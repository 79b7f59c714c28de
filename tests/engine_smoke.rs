use tollgate::config::RepoConfig;
use tollgate::diff::{Diff, FileChange, FileStatus, Line};
use tollgate::policy::{ChangeContext, PolicyEngine, PolicyPack};

#[test]
fn smoke() {
    let pack = PolicyPack::default_pack().unwrap();
    let engine = PolicyEngine::load(&pack).unwrap();
    let config = RepoConfig::defaults(engine.catalog());
    let file = FileChange {
        status: FileStatus::Modified,
        old_path: Some("a.txt".into()),
        new_path: Some("a.txt".into()),
        old_mode: None,
        new_mode: None,
        binary: false,
        patch_available: true,
        additions: 2000,
        deletions: 0,
        added: (1..=2000)
            .map(|i| Line {
                number: i,
                text: if i == 7 {
                    "<<<<<<< HEAD".into()
                } else {
                    format!("x{i}")
                },
            })
            .collect(),
        removed: vec![],
        new_missing_final_newline: false,
    };
    let diff = Diff { files: vec![file] };
    let findings = engine
        .evaluate(&diff, &ChangeContext::default(), &config)
        .unwrap();
    println!("{findings:#?}");
    assert_eq!(findings.violations.len(), 2);
}
