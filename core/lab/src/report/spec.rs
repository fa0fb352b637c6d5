//! The report spec (`reports/<name>.toml`): which runs, how they map to rows and columns, which
//! metrics, and the paper to compare with. The format is documented in `reports/README.md`.
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::format::NumberFormat;
use super::ReportError;

/// A parsed report spec.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The table's title (Markdown heading, LaTeX caption).
    pub title: String,
    /// Globs over run folders, relative to the working directory: `["runs/biggan_cifar10*/*"]`.
    pub runs: Vec<String>,
    /// Config values a run must have to count: `{ "data.dataset" = "cifar10" }`.
    #[serde(default)]
    pub filters: toml::Table,
    /// What tells the rows apart.
    pub rows: Axis,
    /// What tells the columns apart; without it the table has one column.
    #[serde(default)]
    pub columns: Option<Axis>,
    /// The values shown in every cell, in order.
    pub metrics: Vec<MetricSpec>,
    /// A file of the paper's numbers (`reports/references/<paper>.toml`), shown beside ours.
    #[serde(default)]
    pub reference: Option<PathBuf>,
    /// Report columns whose runs used different evaluation protocols instead of refusing.
    #[serde(default)]
    pub allow_mixed_protocols: bool,
    /// Config keys (or sections) the seeds of one cell may differ in, besides [`ALWAYS_IGNORED`].
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Write metric-vs-step plots beside the tables.
    #[serde(default = "yes")]
    pub plots: bool,
    /// Rows have different metrics (a zoo: each system its own check), so a run without one of
    /// the metrics is expected and not listed in a note.
    #[serde(default)]
    pub sparse: bool,
    /// Write `<name>-samples.png`: each cell's newest sample grid (from its lowest seed),
    /// captioned, side by side, so the table's systems can be compared by eye.
    #[serde(default)]
    pub gallery: bool,
}

fn yes() -> bool {
    true
}

/// Config keys that never make two runs different experiments: names, seeds, where and how
/// often things were written, local paths. The evaluation protocol is checked on its own.
pub const ALWAYS_IGNORED: &[&str] = &[
    "name",
    "experiment",
    "seed",
    "device",
    "threads",
    "deterministic",
    "data.root",
    "log",
    "checkpoint",
    "track",
    "plugins",
    "eval.features",
    "eval.batch_size",
];

/// Rows or columns: one config key (or several, combined), and optionally the values to show
/// with their labels, in display order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// `"augment.name"` or `["loss.config.cr_lambda", "augment.name"]`; `"experiment"` is the
    /// run's name without a sweep member's suffix (`cgan__seed=1` → `cgan`).
    pub key: Keys,
    /// Heading over the labels, e.g. "Method" (default: the key).
    #[serde(default)]
    pub title: Option<String>,
    /// `{ none = "BigGAN", diffaugment = "+ DiffAugment" }`; with several keys the values are
    /// joined by `", "`: `{ "10, diffaugment" = "+ DiffAugment" }`. Without it every value
    /// found becomes a row (sorted), labelled by itself.
    #[serde(default)]
    pub names: IndexMap<String, Name>,
}

/// One key or several.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Keys {
    One(String),
    Many(Vec<String>),
}

impl Keys {
    /// The keys, in order.
    pub fn list(&self) -> Vec<String> {
        match self {
            Keys::One(k) => vec![k.clone()],
            Keys::Many(ks) => ks.clone(),
        }
    }
}

/// How a row or column value is shown: a label, or a label plus a unique id.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Name {
    Label(String),
    Full(FullName),
}

/// `{ label = "+ DiffAugment", id = "CR-BigGAN + DiffAugment" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullName {
    /// What the table shows.
    pub label: String,
    /// Unique name: the row or column of the reference file, the CSV and plot legends.
    pub id: Option<String>,
}

impl Name {
    /// What the table shows.
    pub fn label(&self) -> &str {
        match self {
            Name::Label(l) => l,
            Name::Full(f) => &f.label,
        }
    }

    /// The unique id: the `id` when given, else the label.
    pub fn id(&self) -> &str {
        match self {
            Name::Label(l) => l,
            Name::Full(f) => f.id.as_deref().unwrap_or(&f.label),
        }
    }
}

/// Which evaluation of a run a cell shows.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// At the best checkpoint (chosen by the run's primary metric, e.g. FID): the paper convention.
    #[default]
    Best,
    /// At the end of training.
    Final,
}

impl Pick {
    /// `best` or `final`, as a spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Pick::Best => "best",
            Pick::Final => "final",
        }
    }
}

/// `{ name = "fid", value = "best", format = ".2f", label = "FID" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// The evaluation value's name (`eval/<name>` in metrics.jsonl); with `value = "final"`, also
    /// any other scalar the runs logged (its last value), e.g. `toy/modes`.
    pub name: String,
    #[serde(default)]
    pub value: Pick,
    /// `.Nf` (fixed) or `.Ne` (scientific).
    #[serde(default = "default_format")]
    pub format: String,
    /// Column heading (default: the name).
    #[serde(default)]
    pub label: Option<String>,
    /// Whether higher is better, for a value whose plugin does not say (a logged scalar such as
    /// `toy/modes`); default: what the runs' metric plugins declared.
    #[serde(default)]
    pub higher_is_better: Option<bool>,
}

fn default_format() -> String {
    ".2f".into()
}

impl MetricSpec {
    /// The column heading: the label, else the name.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

impl Spec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let spec: Spec = read_toml(path)?;
        spec.validate(path)?;
        Ok(spec)
    }

    /// Rules serde cannot express.
    pub fn validate(&self, path: &Path) -> Result<(), ReportError> {
        let bad = |key: &str, message: String| Err(ReportError::key(path, key, message));
        if self.title.trim().is_empty() {
            return bad("title", "expected a non-empty title".into());
        }
        if self.runs.is_empty() {
            return bad("runs", "expected at least one glob, e.g. `runs = [\"runs/my_experiment*/*\"]`".into());
        }
        for (i, pattern) in self.runs.iter().enumerate() {
            if let Err(e) = glob::Pattern::new(pattern) {
                return bad(&format!("runs[{i}]"), format!("not a glob pattern: {e}"));
            }
        }
        if self.metrics.is_empty() {
            return bad("metrics", "expected at least one metric, e.g. `metrics = [{ name = \"fid\" }]`".into());
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if let Err(e) = NumberFormat::parse(&m.format) {
                return bad(&format!("metrics[{i}].format"), e);
            }
            if self.metrics[..i].iter().any(|o| o.name == m.name && o.value == m.value) {
                return bad(&format!("metrics[{i}]"), format!("`{}` ({}) is listed twice", m.name, m.value.as_str()));
            }
        }
        let axes = std::iter::once(("rows", &self.rows)).chain(self.columns.as_ref().map(|c| ("columns", c)));
        for (section, axis) in axes {
            let keys = axis.key.list();
            if keys.is_empty() || keys.iter().any(|k| k.is_empty() || k.split('.').any(str::is_empty)) {
                return bad(
                    &format!("{section}.key"),
                    "expected a dotted config key such as `augment.name`, or a list of them".into(),
                );
            }
            let mut ids: Vec<&str> = Vec::new();
            for (value, name) in &axis.names {
                let parts = split_values(value);
                if parts.len() != keys.len() {
                    return bad(
                        &format!("{section}.names.\"{value}\""),
                        format!("expected {} value(s) separated by \", \" (one for each of {keys:?})", keys.len()),
                    );
                }
                if ids.contains(&name.id()) {
                    return bad(
                        &format!("{section}.names.\"{value}\""),
                        format!(
                            "id `{}` is used twice; give one of them `{{ label = \"{}\", id = \"...\" }}`",
                            name.id(),
                            name.label()
                        ),
                    );
                }
                ids.push(name.id());
            }
        }
        Ok(())
    }

    /// The spec's name: its file stem, used for the output files.
    pub fn stem(path: &Path) -> String {
        path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into())
    }
}

/// Splits a `names` key of a multi-key axis into its values.
pub fn split_values(text: &str) -> Vec<&str> {
    text.split(", ").map(str::trim).collect()
}

/// Reads a TOML file into `T`, with errors that name the file and the key.
pub(crate) fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::read(path, e))?;
    toml::from_str::<toml::Table>(&text).map_err(|e| ReportError::Syntax {
        path: path.to_path_buf(),
        format: "TOML",
        message: e.to_string().trim().to_string(),
    })?;
    serde_path_to_error::deserialize(toml::Deserializer::new(&text)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.inner().message().to_string();
        if key == "." {
            ReportError::Syntax { path: path.to_path_buf(), format: "TOML", message }
        } else {
            ReportError::key(path, key, message)
        }
    })
}
