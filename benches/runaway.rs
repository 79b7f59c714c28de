//! A runaway rule against the evaluation time limit: the built-in pack plus one rule that would
//! run for minutes on any added line, stopped at each limit; how long each evaluation took.
//! Figures, not assertions. Run with `cargo bench --bench runaway`.

use std::time::{Duration, Instant};
use tollgate::config::RepoConfig;
use tollgate::diff::parse_unified;
use tollgate::policy::{ChangeContext, PolicyEngine, PolicyPack, PolicySource};

const RULES: &str = "- id: RUNAWAY\n  name: Runaway\n  tier: WARNING\n  category: test\n  description: d\n  remediation: r\n  override_when: o\n";

/// 400 million pairs for every added file.
const REGO: &str = r#"package tollgate.rules.runaway

violation contains {"rule": "RUNAWAY", "message": "never"} if {
	some f in input.files
	r := numbers.range(1, 20000)
	some i in r
	some j in r
	i * j == -1
	f.path == ""
}
"#;

const DIFF: &str = "diff --git a/app/main.py b/app/main.py\nnew file mode 100644\n--- /dev/null\n+++ b/app/main.py\n@@ -0,0 +1,2 @@\n+import os\n+print(os.name)\n";

fn main() {
    let mut pack = PolicyPack::default_pack().expect("the built-in pack loads");
    pack.catalog
        .add_yaml("runaway/rules.yaml", RULES, false)
        .expect("metadata");
    pack.sources.push(PolicySource {
        name: "runaway/runaway.rego".into(),
        text: REGO.into(),
    });
    let loaded = PolicyEngine::load(&pack).expect("the pack compiles");
    let diff = parse_unified(DIFF.as_bytes()).expect("diff");
    let config = RepoConfig::defaults(loaded.catalog());
    println!("tollgate runaway rule against the evaluation time limit");
    for limit in [
        Duration::from_millis(100),
        Duration::from_secs(1),
        Duration::from_secs(3),
    ] {
        let engine = PolicyEngine::load(&pack)
            .expect("the pack compiles")
            .with_time_limit(limit);
        let started = Instant::now();
        let result = engine.evaluate(&diff, &ChangeContext::default(), &config);
        let took = started.elapsed();
        println!(
            "limit {:>6.0} ms: stopped after {:>7.1} ms (overshoot {:>5.1} ms); {}",
            limit.as_secs_f64() * 1000.0,
            took.as_secs_f64() * 1000.0,
            (took.as_secs_f64() - limit.as_secs_f64()) * 1000.0,
            match result {
                Err(error) => error.to_string(),
                Ok(_) => "NOT stopped".to_owned(),
            }
        );
    }
}
