//! What can go wrong while making a report; every message names the file (and key) to fix.
use std::path::{Path, PathBuf};

/// A report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A spec, reference or run file could not be read.
    #[error("{}: cannot read: {message}", path.display())]
    Read { path: PathBuf, message: String },
    /// A TOML or JSON file does not parse.
    #[error("{}: not valid {format}: {message}", path.display())]
    Syntax { path: PathBuf, format: &'static str, message: String },
    /// A key of a spec or reference file has the wrong type or a value that makes no sense.
    #[error("{}: key `{key}`: {message}", path.display())]
    Key { path: PathBuf, key: String, message: String },
    /// Runs in one column were evaluated with different protocols.
    #[error("{}: column `{column}` mixes evaluation protocols, so its values are not comparable:\n{detail}\nEvaluate them alike (`lab eval RUN --num-samples N --reference SPLIT`), narrow `runs`/`filters`, or set `allow_mixed_protocols = true` to report them with one footnote per protocol.", spec.display())]
    MixedProtocols { spec: PathBuf, column: String, detail: String },
    /// Runs of one cell differ in more than their seed.
    #[error("{}: cell `{row}` × `{column}` holds runs that differ in more than the seed:\n{detail}\nNarrow `runs` or `filters`, make the key a row or column, or list it in `ignore`.", spec.display())]
    MixedConfigs { spec: PathBuf, row: String, column: String, detail: String },
    /// An output file could not be written.
    #[error("{}: cannot write: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

impl ReportError {
    pub(crate) fn key(path: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Key { path: path.to_path_buf(), key: key.into(), message: message.into() }
    }

    pub(crate) fn read(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Read { path: path.to_path_buf(), message: e.to_string() }
    }

    pub(crate) fn write(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Write { path: path.to_path_buf(), message: e.to_string() }
    }
}
