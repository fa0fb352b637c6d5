//! A paper's published numbers (`reports/references/<paper>.toml`), shown beside ours:
//! `[rows."<row id>"]` tables of `"<column id>" = { <metric> = value, ... }`.
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::spec::read_toml;
use super::ReportError;

/// The numbers of one paper table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// The paper and table, e.g. "DiffAugment (Zhao et al., NeurIPS 2020), CIFAR-10".
    pub title: String,
    /// Where the numbers were taken from, and any doubt about them.
    pub source: String,
    /// The protocol the paper evaluated with, in words.
    #[serde(default)]
    pub protocol: String,
    /// row id → column id → metric → value, in the paper's order.
    pub rows: IndexMap<String, IndexMap<String, IndexMap<String, f64>>>,
    #[serde(skip)]
    pub path: PathBuf,
}

impl Reference {
    /// Reads a reference file; errors name the file and key.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let mut r: Reference = read_toml(path)?;
        if r.rows.is_empty() {
            return Err(ReportError::key(path, "rows", "expected at least one `[rows.\"<row id>\"]` table"));
        }
        r.path = path.to_path_buf();
        Ok(r)
    }

    /// The paper's value, if it reports one.
    pub fn get(&self, row: &str, column: &str, metric: &str) -> Option<f64> {
        self.rows.get(row)?.get(column)?.get(metric).copied()
    }

    /// Every column id the paper uses, in order of first appearance.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for cols in self.rows.values() {
            for c in cols.keys() {
                if !out.contains(&c.as_str()) {
                    out.push(c);
                }
            }
        }
        out
    }
}
