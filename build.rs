//! Embeds the default policy pack (`policies/*.rego` and `policies/rules.yaml`) in the binary,
//! so `tollgate` runs from any directory. Rego test files (`*_test.rego`) are left out.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=policies");
    let dir = Path::new("policies");
    let mut rego: Vec<PathBuf> = fs::read_dir(dir)
        .expect("policies/ exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".rego") && !name.ends_with("_test.rego")
        })
        .collect();
    rego.sort();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut file = fs::File::create(out.join("default_pack.rs")).expect("OUT_DIR is writable");
    // The generated file names the checkout through `env!` rather than a literal path: cargo may
    // reuse this script's output for a checkout elsewhere that shares the target directory (CI
    // clones into a fresh directory with a cached target), and a literal path would point into
    // the old checkout.
    writeln!(file, "pub(crate) const DEFAULT_REGO: &[(&str, &str)] = &[").unwrap();
    for path in &rego {
        let name = path.display();
        writeln!(
            file,
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/\", {name:?}))),"
        )
        .unwrap();
    }
    writeln!(file, "];").unwrap();
    writeln!(
        file,
        "pub(crate) const DEFAULT_RULES_YAML: &str = include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/policies/rules.yaml\"));"
    )
    .unwrap();
}
