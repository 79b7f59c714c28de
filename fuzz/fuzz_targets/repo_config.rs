//! Feeds arbitrary text to the `.github/tollgate.yml` parser and resolves what parses against the
//! default pack's catalog, as every evaluation does.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::config::{RepoConfig, RepoConfigFile};
use tollgate::policy::{Catalog, PolicyEngine, PolicyPack};

/// Loading the pack compiles its Rego, far slower than one input: done once per process.
fn catalog() -> &'static Catalog {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let pack = PolicyPack::default_pack().expect("the default pack is valid");
            PolicyEngine::load(&pack).expect("the default pack loads")
        })
        .catalog()
}

fuzz_target!(|data: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = RepoConfigFile::parse(yaml) else {
        return;
    };
    if let Ok(config) = RepoConfig::resolve(&file, catalog()) {
        for path in &config.ignore_paths {
            let _ = config.is_ignored(path);
        }
    }
});
