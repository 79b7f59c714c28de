//! A policy pack: Rego sources plus the rule catalog, from the built-in default pack and/or a
//! directory of the user's.

use super::{Catalog, PolicyError};
use sha2::{Digest, Sha256};
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/default_pack.rs"));

/// The name of the metadata file in a pack directory.
pub const RULES_FILE: &str = "rules.yaml";

#[derive(Debug, Clone)]
pub struct PolicySource {
    pub name: String,
    pub text: String,
}

/// Rego sources and rule metadata, not yet compiled.
#[derive(Debug, Clone)]
pub struct PolicyPack {
    pub sources: Vec<PolicySource>,
    pub catalog: Catalog,
    /// Metadata texts in load order, kept for the digest.
    catalog_texts: Vec<String>,
}

impl PolicyPack {
    /// The pack shipped with Tollgate (embedded at build time from `policies/`).
    pub fn default_pack() -> Result<Self, PolicyError> {
        let mut pack = Self::empty();
        pack.add_catalog("policies/rules.yaml", DEFAULT_RULES_YAML, false)?;
        for (name, text) in DEFAULT_REGO {
            pack.sources.push(PolicySource {
                name: (*name).to_owned(),
                text: (*text).to_owned(),
            });
        }
        Ok(pack)
    }

    pub fn empty() -> Self {
        Self {
            sources: Vec::new(),
            catalog: Catalog::default(),
            catalog_texts: Vec::new(),
        }
    }

    /// Adds the `*.rego` files (not `*_test.rego`) and the optional `rules.yaml` of a directory.
    /// Rules in its `rules.yaml` may redefine rules of the pack it extends.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let io_error = |path: &Path, e: std::io::Error| PolicyError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| io_error(dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        paths.sort();
        let mut found_rego = false;
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name == RULES_FILE {
                let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
                self.add_catalog(&path.display().to_string(), &text, true)?;
            } else if name.ends_with(".rego") && !name.ends_with("_test.rego") {
                let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
                self.sources.push(PolicySource {
                    name: path.display().to_string(),
                    text,
                });
                found_rego = true;
            }
        }
        if !found_rego {
            return Err(PolicyError::Io {
                path: dir.display().to_string(),
                message: "no .rego files in this directory".to_owned(),
            });
        }
        Ok(())
    }

    fn add_catalog(&mut self, name: &str, text: &str, replace: bool) -> Result<(), PolicyError> {
        self.catalog.add_yaml(name, text, replace)?;
        self.catalog_texts.push(text.to_owned());
        Ok(())
    }

    /// A short digest of everything that decides results: sources and metadata, in order.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for source in &self.sources {
            hasher.update(source.name.as_bytes());
            hasher.update([0u8]);
            hasher.update(source.text.as_bytes());
            hasher.update([0u8]);
        }
        for text in &self.catalog_texts {
            hasher.update(text.as_bytes());
            hasher.update([0u8]);
        }
        hasher.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
