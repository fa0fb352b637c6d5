//! `lab report`: paper-style result tables from run folders. A spec (`reports/<name>.toml`,
//! format in `reports/README.md`) picks runs by glob and config filters, sorts them into rows ×
//! columns by config keys, aggregates seeds as mean ± std, bolds the best value per column,
//! puts the paper's numbers beside ours, states the evaluation protocol (refusing to mix
//! protocols in a column), and writes Markdown, LaTeX, CSV, metric-vs-step plots and, when asked,
//! a gallery of each cell's samples.
mod csv;
mod error;
mod font;
mod format;
mod gallery;
mod latex;
mod markdown;
mod plot;
mod protocol;
mod reference;
mod runs;
mod spec;
mod stats;
mod table;
mod text;
pub(crate) mod value;

use std::path::{Path, PathBuf};

pub use error::ReportError;
pub use format::NumberFormat;
pub use protocol::Protocol;
pub use reference::Reference;
pub use spec::{Axis, Keys, MetricSpec, Name, Pick, Spec, ALWAYS_IGNORED};
pub use stats::Stat;
pub use table::{build, Cell, CellValue, Heading, MetricColumn, ProtocolNote, ReferenceInfo, Table};

/// The three renderings of a table.
pub fn render_markdown(table: &Table) -> String {
    markdown::render(table)
}

/// The LaTeX `table` environment (booktabs).
pub fn render_latex(table: &Table) -> String {
    latex::render(table)
}

/// One CSV line per (row, column, metric).
pub fn render_csv(table: &Table) -> String {
    csv::render(table)
}

/// What `generate` made.
#[derive(Debug)]
pub struct Generated {
    pub table: Table,
    /// `<out>/<name>.md`, `.tex`, `.csv`, then the plots and the gallery.
    pub files: Vec<PathBuf>,
}

/// Reads the spec, builds the table from the runs (globs and reference relative to `base`),
/// and writes `<out>/<spec name>.{md,tex,csv}` plus the plots (unless the spec turns them off)
/// and the sample gallery (when the spec asks for it).
pub fn generate(spec_path: &Path, base: &Path, out: &Path) -> Result<Generated, ReportError> {
    let spec = Spec::load(spec_path)?;
    let mut table = build(&spec, spec_path, base)?;
    std::fs::create_dir_all(out).map_err(|e| ReportError::write(out, e))?;
    let mut plots = Vec::new();
    if spec.plots {
        let (written, note) = plot::write_all(&table, out)?;
        plots = written;
        table.notes.extend(note);
    }
    if spec.gallery {
        let (written, note) = gallery::write(&table, out)?;
        plots.extend(written);
        table.notes.extend(note);
    }
    let mut files = Vec::new();
    for (ext, text) in [("md", render_markdown(&table)), ("tex", render_latex(&table)), ("csv", render_csv(&table))] {
        let path = out.join(format!("{}.{ext}", table.name));
        std::fs::write(&path, text).map_err(|e| ReportError::write(&path, e))?;
        files.push(path);
    }
    files.extend(plots);
    Ok(Generated { table, files })
}

#[cfg(test)]
mod tests;
