//! Config errors that say where (file, key), what was expected, and what to do.
use std::path::PathBuf;

use figment::error::Kind;

use super::Sources;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the experiment file: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("--set {assignment:?}: expected `key.path=value`, e.g. `--set train.steps=2000`")]
    Assignment { assignment: String },
    #[error("{source_name}: unknown key `{key}`; {hint}valid keys{section}: {valid}")]
    UnknownKey { source_name: String, key: String, hint: String, section: String, valid: String },
    #[error("{source_name}: key `{key}`: expected {expected}, found {found}")]
    WrongType { source_name: String, key: String, expected: String, found: String },
    #[error("{source_name}: {message}")]
    Other { source_name: String, message: String },
    #[error("{}key `{key}`: expected {expected}, found {found}", file_prefix(file))]
    Invalid { file: Option<PathBuf>, key: String, expected: String, found: String },
    #[error("{}{message}", file_prefix(file))]
    Data { file: Option<PathBuf>, message: String },
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default()
}

fn describe_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "`true` or `false`".into(),
        other => other.to_string(),
    }
}

impl ConfigError {
    pub(super) fn from_figment(e: figment::Error, sources: &Sources) -> Self {
        let source_name = match e.metadata.as_ref() {
            Some(m) if m.name.contains("environment") => "environment (LAB_* variables)".to_string(),
            Some(m) => match &m.source {
                Some(figment::Source::File(p)) => sources
                    .file
                    .clone()
                    .filter(|f| f.canonicalize().ok() == p.canonicalize().ok())
                    .unwrap_or_else(|| p.clone())
                    .display()
                    .to_string(),
                _ if m.name.contains("string") => "--set".to_string(),
                _ => m.name.to_string(),
            },
            None => "config".to_string(),
        };
        match e.kind {
            Kind::UnknownField(field, expected) => {
                // figment's path already ends with the unknown field itself.
                let mut section: Vec<&str> = e.path.iter().map(String::as_str).collect();
                if section.last() == Some(&field.as_str()) {
                    section.pop();
                }
                let key = section.iter().copied().chain([field.as_str()]).collect::<Vec<_>>().join(".");
                let prefix = if section.is_empty() { String::new() } else { format!("{}.", section.join(".")) };
                let hint = lab_plugin_api::config::did_you_mean(&field, expected.iter().copied())
                    .map(|s| format!("did you mean `{prefix}{s}`? "))
                    .unwrap_or_default();
                let mut valid: Vec<&str> = expected.to_vec();
                valid.sort_unstable();
                let section = if section.is_empty() { String::new() } else { format!(" in [{}]", section.join(".")) };
                ConfigError::UnknownKey { source_name, key, hint, section, valid: valid.join(", ") }
            }
            Kind::InvalidType(actual, expected) => ConfigError::WrongType {
                source_name,
                key: e.path.join("."),
                expected: describe_expected(&expected),
                found: actual.to_string(),
            },
            Kind::InvalidValue(actual, expected) => ConfigError::WrongType {
                source_name,
                key: e.path.join("."),
                expected: describe_expected(&expected),
                found: actual.to_string(),
            },
            kind => ConfigError::Other { source_name, message: format!("key `{}`: {kind}", e.path.join(".")) },
        }
    }
}
