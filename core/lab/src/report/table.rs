//! The report's content, independent of its output format: runs sorted into rows × columns,
//! seeds aggregated, best values marked, the paper's numbers beside ours, the protocol stated,
//! and a note for everything that was left out.
use std::collections::BTreeMap;
use std::path::Path;

use super::format::NumberFormat;
use super::protocol::Protocol;
use super::reference::Reference;
use super::runs::{self, Curves, Run};
use super::spec::{split_values, Axis, Pick, Spec, ALWAYS_IGNORED};
use super::stats::Stat;
use super::value;
use super::ReportError;

/// How a key reads in a multi-key axis when the run's config lacks it: `"none, both, -"` in
/// `names`.
pub const ABSENT: &str = "-";

/// In `names`, a value that matches any value of its key, absent included (`"ada, both, *"`:
/// ADA's resolved config holds its whole pipeline under `policy`).
pub const ANY: &str = "*";

/// A row or a column.
#[derive(Clone, Debug)]
pub struct Heading {
    /// Unique: the paper's row/column, CSV and plot legends.
    pub id: String,
    /// What the table shows.
    pub label: String,
    /// The config value(s) it stands for, as a spec writes them (`0.1`; `10, diffaugment`).
    pub value: String,
}

/// A metric as the table shows it.
#[derive(Clone, Debug)]
pub struct MetricColumn {
    pub name: String,
    pub label: String,
    pub pick: Pick,
    pub format: NumberFormat,
    /// From the runs' summaries; `None` when no run reported the metric.
    pub higher_is_better: Option<bool>,
}

/// One metric in one cell.
#[derive(Clone, Debug, Default)]
pub struct CellValue {
    pub stat: Option<Stat>,
    pub reference: Option<f64>,
    /// The best value of its column.
    pub best: bool,
    /// Metric vs step, averaged over the seeds that logged each step.
    pub curve: Vec<(u64, f64)>,
}

impl CellValue {
    /// Ours minus the paper's.
    pub fn delta(&self) -> Option<f64> {
        Some(self.stat.as_ref()?.mean - self.reference?)
    }
}

/// One row × column.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    /// The counted runs, as shown in notes.
    pub runs: Vec<String>,
    /// The counted runs' folders with their seeds, lowest seed first (the gallery's pick).
    pub folders: Vec<(u64, std::path::PathBuf)>,
    /// One per metric, in the spec's order.
    pub values: Vec<CellValue>,
}

/// A protocol footnote and what it applies to.
#[derive(Clone, Debug)]
pub struct ProtocolNote {
    pub text: String,
    /// `None`: every value in the table.
    pub applies_to: Option<String>,
}

/// Where the paper's numbers come from.
#[derive(Clone, Debug)]
pub struct ReferenceInfo {
    pub title: String,
    pub source: String,
    pub protocol: String,
}

/// Everything a report shows.
#[derive(Clone, Debug)]
pub struct Table {
    pub title: String,
    /// The spec's file stem: output names and the LaTeX label.
    pub name: String,
    pub row_title: String,
    pub column_title: String,
    pub rows: Vec<Heading>,
    /// A single unnamed column when the spec has no `columns`.
    pub columns: Vec<Heading>,
    pub has_columns: bool,
    pub metrics: Vec<MetricColumn>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
    pub protocols: Vec<ProtocolNote>,
    pub reference: Option<ReferenceInfo>,
    pub notes: Vec<String>,
}

impl Table {
    /// The cell at `row`, `column`.
    pub fn cell(&self, row: usize, column: usize) -> &Cell {
        &self.cells[row][column]
    }
}

/// The rows or columns of a table and the value tuple each one stands for.
struct AxisPlan {
    keys: Vec<String>,
    headings: Vec<Heading>,
    /// For named axes, the spec's value texts (`names` keys, split).
    texts: Vec<Vec<String>>,
    /// For unnamed axes, the values found so far.
    values: Vec<Vec<toml::Value>>,
    named: bool,
}

impl AxisPlan {
    fn new(axis: Option<&Axis>) -> Self {
        let Some(axis) = axis else {
            let all = Heading { id: "all".into(), label: "all runs".into(), value: String::new() };
            return Self {
                keys: Vec::new(),
                headings: vec![all],
                texts: vec![Vec::new()],
                values: Vec::new(),
                named: true,
            };
        };
        let keys = axis.key.list();
        let mut headings = Vec::new();
        let mut texts = Vec::new();
        for (text, name) in &axis.names {
            headings.push(Heading { id: name.id().to_string(), label: name.label().to_string(), value: text.clone() });
            texts.push(split_values(text).into_iter().map(str::to_string).collect());
        }
        Self { keys, headings, texts, values: Vec::new(), named: !axis.names.is_empty() }
    }

    /// The index of the run's heading (adding one for a new value of an unnamed axis), or why
    /// the run has none.
    fn place(&mut self, config: &toml::Table, section: &str) -> Result<usize, String> {
        let mut found = Vec::new();
        let mut absent = Vec::new();
        for key in &self.keys {
            match value::lookup(config, key) {
                Some(v) => found.push(v.clone()),
                None => {
                    absent.push(key);
                    found.push(toml::Value::String(ABSENT.to_string()));
                }
            }
        }
        // One key of several may belong to a plugin the run does not use (DiffAugment's
        // `augment.config.policy` beside a run without augmentation); a run with none of them
        // is not in the study.
        if !absent.is_empty() && absent.len() == self.keys.len() {
            return Err(format!("its config has no `{}` ({section}.key)", absent[0]));
        }
        let position = if self.named {
            self.texts.iter().position(|want| want.iter().zip(&found).all(|(w, f)| w == ANY || value::matches(w, f)))
        } else {
            self.values.iter().position(|want| want.iter().zip(&found).all(|(w, f)| value::same(w, f)))
        };
        if let Some(i) = position {
            return Ok(i);
        }
        let text = found.iter().map(value::display).collect::<Vec<_>>().join(", ");
        if self.named {
            let (keys, values) = match self.keys.len() {
                1 => (self.keys[0].clone(), text),
                _ => (format!("({})", self.keys.join(", ")), format!("({text})")),
            };
            return Err(format!("{keys} = {values} is not in {section}.names"));
        }
        self.headings.push(Heading { id: text.clone(), label: text.clone(), value: text });
        self.values.push(found);
        Ok(self.headings.len() - 1)
    }

    /// Sorts the headings of an unnamed axis by value; returns old index → new index.
    fn sort(&mut self) -> Vec<usize> {
        let n = self.headings.len();
        if self.named {
            return (0..n).collect();
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            self.values[a]
                .iter()
                .zip(&self.values[b])
                .map(|(x, y)| value::order(x, y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut new_index = vec![0; n];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        self.headings = order.iter().map(|&i| self.headings[i].clone()).collect();
        self.values = order.iter().map(|&i| self.values[i].clone()).collect();
        new_index
    }
}

/// Makes the table for `spec` (read from `spec_path`), with run globs and the reference path
/// taken relative to `base` (the working directory).
pub fn build(spec: &Spec, spec_path: &Path, base: &Path) -> Result<Table, ReportError> {
    let found = runs::discover(&spec.runs, base, spec_path)?;
    let mut notes = Vec::new();
    if !found.not_runs.is_empty() {
        notes.push(format!("Not run folders (no config.toml): {}.", found.not_runs.join(", ")));
    }

    let filters: Vec<(String, toml::Value)> = value::flatten(&spec.filters);
    let (kept, filtered): (Vec<Run>, Vec<Run>) = found.runs.into_iter().partition(|r| {
        filters.iter().all(|(k, want)| value::lookup(&r.config, k).is_some_and(|v| value::same(want, v)))
    });
    if !filtered.is_empty() {
        notes.push(format!("{} run(s) left out by `filters`.", filtered.len()));
    }
    let (finished, unfinished): (Vec<Run>, Vec<Run>) = kept.into_iter().partition(Run::finished);
    if !unfinished.is_empty() {
        let list: Vec<String> = unfinished.iter().map(|r| format!("{} ({})", r.shown, r.status)).collect();
        notes.push(format!("Not finished, not counted: {}.", list.join(", ")));
    }

    let mut rows = AxisPlan::new(Some(&spec.rows));
    let mut columns = AxisPlan::new(spec.columns.as_ref());
    let mut placed: Vec<(usize, usize, Run)> = Vec::new();
    let mut outside = Vec::new();
    for run in finished {
        let place = rows.place(&run.config, "rows").and_then(|r| columns.place(&run.config, "columns").map(|c| (r, c)));
        match place {
            Ok((r, c)) => placed.push((r, c, run)),
            Err(why) => outside.push(format!("{}: {why}", run.shown)),
        }
    }
    if !outside.is_empty() {
        notes.push(format!("Finished but not in the table: {}.", outside.join("; ")));
    }
    let row_order = rows.sort();
    let column_order = columns.sort();
    let (n_rows, n_cols) = (rows.headings.len(), columns.headings.len());
    let mut grouped: Vec<Vec<Vec<Run>>> = vec![vec![Vec::new(); n_cols]; n_rows];
    for (r, c, run) in placed {
        grouped[row_order[r]][column_order[c]].push(run);
    }

    let mut ignored: Vec<String> = ALWAYS_IGNORED.iter().map(|s| s.to_string()).collect();
    ignored.extend(spec.ignore.iter().cloned());
    for (r, row) in grouped.iter_mut().enumerate() {
        for (c, cell) in row.iter_mut().enumerate() {
            let dropped = newest_per_seed(cell);
            if !dropped.is_empty() {
                notes.push(format!(
                    "{} @ {}: more than one run of a seed; counted the newest, not {}.",
                    rows.headings[r].id,
                    columns.headings[c].id,
                    dropped.join(", ")
                ));
            }
            check_same_config(cell, &ignored).map_err(|detail| ReportError::MixedConfigs {
                spec: spec_path.to_path_buf(),
                row: rows.headings[r].id.clone(),
                column: columns.headings[c].id.clone(),
                detail,
            })?;
        }
    }

    let metric_names: Vec<String> = spec.metrics.iter().map(|m| m.name.clone()).collect();
    let protocols = protocol_notes(spec, spec_path, &grouped, &rows.headings, &columns.headings, &metric_names)?;

    let reference = match &spec.reference {
        Some(p) => {
            let path = if p.is_absolute() { p.clone() } else { base.join(p) };
            Some(Reference::load(&path).map_err(|e| match e {
                ReportError::Read { path, message } => {
                    ReportError::key(spec_path, "reference", format!("{}: {message}", path.display()))
                }
                e => e,
            })?)
        }
        None => None,
    };
    if let Some(reference) = &reference {
        let missing_rows: Vec<&str> =
            rows.headings.iter().map(|h| h.id.as_str()).filter(|id| !reference.rows.contains_key(*id)).collect();
        if !missing_rows.is_empty() {
            notes.push(format!("The paper has no row {}.", quoted(&missing_rows)));
        }
        let paper_columns = reference.columns();
        let missing_cols: Vec<&str> =
            columns.headings.iter().map(|h| h.id.as_str()).filter(|id| !paper_columns.contains(id)).collect();
        if !missing_cols.is_empty() && spec.columns.is_some() {
            notes.push(format!("The paper has no column {}.", quoted(&missing_cols)));
        }
    }

    let mut metrics: Vec<MetricColumn> = spec
        .metrics
        .iter()
        .map(|m| MetricColumn {
            name: m.name.clone(),
            label: m.label().to_string(),
            pick: m.value,
            format: NumberFormat::parse(&m.format).expect("checked by Spec::validate"),
            higher_is_better: m.higher_is_better,
        })
        .collect();
    let mut cells: Vec<Vec<Cell>> = vec![vec![Cell::default(); n_cols]; n_rows];
    let mut empty = Vec::new();
    let mut no_value: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in 0..n_rows {
        for c in 0..n_cols {
            let group = &grouped[r][c];
            let where_ = format!("{} @ {}", rows.headings[r].id, columns.headings[c].id);
            if group.is_empty() {
                empty.push(where_.clone());
            }
            let curves: Vec<Curves> = group.iter().map(runs::eval_curves).collect::<Result<_, _>>()?;
            let cell = &mut cells[r][c];
            cell.runs = group.iter().map(|r| r.shown.clone()).collect();
            cell.folders = group.iter().map(|r| (r.seed, r.path.clone())).collect();
            cell.folders.sort();
            for m in metrics.iter_mut() {
                let mut values = Vec::new();
                for (run, curves) in group.iter().zip(&curves) {
                    if m.higher_is_better.is_none() {
                        m.higher_is_better = run.higher_is_better(&m.name);
                    }
                    match pick(run, curves, &m.name, m.pick) {
                        Some(v) => values.push((run.seed, v)),
                        None if spec.sparse => {}
                        None => no_value
                            .entry(format!("`{}` ({})", m.name, m.pick.as_str()))
                            .or_default()
                            .push(run.shown.clone()),
                    }
                }
                let reference =
                    reference.as_ref().and_then(|p| p.get(&rows.headings[r].id, &columns.headings[c].id, &m.name));
                cell.values.push(CellValue {
                    stat: Stat::of(&values),
                    reference,
                    best: false,
                    curve: mean_curve(curves.iter().filter_map(|cv| cv.get(&m.name))),
                });
            }
        }
    }
    mark_best(&mut cells, &metrics);
    if !empty.is_empty() {
        notes.push(format!("No finished runs (—): {}.", empty.join(", ")));
    }
    for (what, runs) in no_value {
        notes.push(format!("No {what} value in: {}.", runs.join(", ")));
    }
    let counted = grouped.iter().flatten().any(|cell| !cell.is_empty());
    let unknown: Vec<&str> = metrics.iter().filter(|m| m.higher_is_better.is_none()).map(|m| m.name.as_str()).collect();
    if counted && !unknown.is_empty() {
        notes.push(format!("No run says whether higher is better for {}: no value of it is bold.", quoted(&unknown)));
    }

    let keys = |a: &AxisPlan| a.keys.join(", ");
    Ok(Table {
        title: spec.title.clone(),
        name: Spec::stem(spec_path),
        row_title: spec.rows.title.clone().unwrap_or_else(|| keys(&rows)),
        column_title: spec.columns.as_ref().and_then(|c| c.title.clone()).unwrap_or_else(|| keys(&columns)),
        rows: rows.headings,
        columns: columns.headings,
        has_columns: spec.columns.is_some(),
        metrics,
        cells,
        protocols,
        reference: reference.map(|r| ReferenceInfo { title: r.title, source: r.source, protocol: r.protocol }),
        notes,
    })
}

fn quoted(items: &[&str]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

/// Keeps the newest run of each seed; returns the others, as shown.
fn newest_per_seed(cell: &mut Vec<Run>) -> Vec<String> {
    cell.sort_by(|a, b| (a.seed, &a.started, &a.path).cmp(&(b.seed, &b.started, &b.path)));
    let mut dropped = Vec::new();
    let mut kept: Vec<Run> = Vec::new();
    for run in cell.drain(..) {
        if let Some(last) = kept.last_mut() {
            if last.seed == run.seed {
                dropped.push(std::mem::replace(last, run).shown);
                continue;
            }
        }
        kept.push(run);
    }
    *cell = kept;
    dropped
}

/// Every run of a cell must be the same experiment up to the ignored keys.
fn check_same_config(cell: &[Run], ignored: &[String]) -> Result<(), String> {
    let Some(first) = cell.first() else { return Ok(()) };
    let relevant = |run: &Run| -> BTreeMap<String, toml::Value> {
        value::flatten(&run.config).into_iter().filter(|(k, _)| !ignored.iter().any(|i| value::within(k, i))).collect()
    };
    let a = relevant(first);
    for run in &cell[1..] {
        let b = relevant(run);
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let show = |v: Option<&toml::Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "(absent)".into());
        let diffs: Vec<String> = keys
            .into_iter()
            .filter(|k| match (a.get(*k), b.get(*k)) {
                (Some(x), Some(y)) => !value::same(x, y),
                _ => true,
            })
            .map(|k| format!("  {k} = {} in {}, {} in {}", show(a.get(k)), first.shown, show(b.get(k)), run.shown))
            .collect();
        if !diffs.is_empty() {
            return Err(diffs.join("\n"));
        }
    }
    Ok(())
}

/// A run's value of `metric`: its last evaluation, or the one at its best checkpoint. A final
/// value no evaluation has is the last value the run logged under that key (e.g. `toy/modes`).
fn pick(run: &Run, curves: &Curves, metric: &str, which: Pick) -> Option<f64> {
    let last_logged = || curves.last_logged.get(metric).map(|&(_, value)| value);
    let Some(eval) = run.eval.as_ref() else {
        return if which == Pick::Final { last_logged() } else { None };
    };
    match which {
        Pick::Final => eval.last.as_ref().and_then(|l| l.values.get(metric).copied()).or_else(last_logged),
        Pick::Best => {
            let best = eval.best.as_ref()?;
            if best.metric == metric {
                return Some(best.value);
            }
            curves.get(metric)?.iter().find(|p| p.0 == best.step).map(|p| p.1)
        }
    }
}

fn mean_curve<'a>(series: impl Iterator<Item = &'a Vec<(u64, f64)>>) -> Vec<(u64, f64)> {
    let mut by_step: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for s in series {
        for &(step, v) in s {
            let e = by_step.entry(step).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    by_step.into_iter().map(|(step, (sum, n))| (step, sum / n as f64)).collect()
}

/// Bolds the best mean of each column and metric, when at least two rows have one.
fn mark_best(cells: &mut [Vec<Cell>], metrics: &[MetricColumn]) {
    let n_cols = cells.first().map_or(0, Vec::len);
    for (m, metric) in metrics.iter().enumerate() {
        let Some(higher) = metric.higher_is_better else { continue };
        for c in 0..n_cols {
            let means: Vec<(usize, f64)> = cells
                .iter()
                .enumerate()
                .filter_map(|(r, row)| row[c].values[m].stat.as_ref().map(|s| (r, s.mean)))
                .collect();
            if means.len() < 2 {
                continue;
            }
            let best =
                means.iter().map(|p| p.1).fold(if higher { f64::NEG_INFINITY } else { f64::INFINITY }, |a, b| {
                    if higher {
                        a.max(b)
                    } else {
                        a.min(b)
                    }
                });
            // Compare as printed: values that print the same are tied.
            let shown = |v: f64| metric.format.format(v);
            for (r, mean) in means {
                cells[r][c].values[m].best = shown(mean) == shown(best);
            }
        }
    }
}

/// Checks that each column has one protocol (unless allowed) and writes the footnotes.
fn protocol_notes(
    spec: &Spec,
    spec_path: &Path,
    grouped: &[Vec<Vec<Run>>],
    rows: &[Heading],
    columns: &[Heading],
    metric_names: &[String],
) -> Result<Vec<ProtocolNote>, ReportError> {
    // Distinct protocols in order of appearance, with the cells (row, column) that use each.
    let mut distinct: Vec<(Protocol, Vec<(usize, usize)>)> = Vec::new();
    for (c, column) in columns.iter().enumerate() {
        let mut in_column: Vec<(Protocol, String)> = Vec::new();
        for (r, row) in grouped.iter().enumerate() {
            for run in &row[c] {
                let Some(raw) = run.protocol() else { continue };
                let p = Protocol::new(raw, metric_names);
                if !in_column.iter().any(|(q, _)| q.fields == p.fields) {
                    in_column.push((p.clone(), format!("{} ({})", run.shown, rows[r].id)));
                }
                match distinct.iter_mut().find(|(q, _)| q.fields == p.fields) {
                    Some((_, cells)) => {
                        if !cells.contains(&(r, c)) {
                            cells.push((r, c));
                        }
                    }
                    None => distinct.push((p, vec![(r, c)])),
                }
            }
        }
        if in_column.len() > 1 && !spec.allow_mixed_protocols {
            let mut keys: Vec<String> = Vec::new();
            for (p, _) in &in_column[1..] {
                for d in in_column[0].0.differences(p) {
                    let key = d.split(" = ").next().unwrap_or_default().to_string();
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
            keys.sort();
            let detail = in_column
                .iter()
                .map(|(p, run)| {
                    let fields: Vec<String> = keys
                        .iter()
                        .map(|k| format!("{k} = {}", p.fields.get(k).map(String::as_str).unwrap_or("(absent)")))
                        .collect();
                    format!("  {run}: {}", fields.join(", "))
                })
                .collect::<Vec<_>>()
                .join("\n");
            return Err(ReportError::MixedProtocols {
                spec: spec_path.to_path_buf(),
                column: column.id.clone(),
                detail,
            });
        }
    }
    let single = distinct.len() == 1;
    Ok(distinct
        .into_iter()
        .map(|(p, cells)| {
            let applies_to = (!single).then(|| describe_cells(&cells, rows, columns, grouped));
            ProtocolNote { text: p.describe(metric_names), applies_to }
        })
        .collect())
}

/// "columns 100%, 20%" when a protocol covers whole columns, else "BigGAN @ 10%, ...".
fn describe_cells(
    cells: &[(usize, usize)],
    rows: &[Heading],
    columns: &[Heading],
    grouped: &[Vec<Vec<Run>>],
) -> String {
    let mut whole = Vec::new();
    let mut single = Vec::new();
    for (c, column) in columns.iter().enumerate() {
        let filled: Vec<usize> = (0..rows.len()).filter(|&r| !grouped[r][c].is_empty()).collect();
        let covered: Vec<usize> = filled.iter().copied().filter(|&r| cells.contains(&(r, c))).collect();
        if covered.is_empty() {
            continue;
        }
        if covered.len() == filled.len() {
            whole.push(column.id.clone());
        } else {
            single.extend(covered.iter().map(|&r| format!("{} @ {}", rows[r].id, column.id)));
        }
    }
    let mut parts = Vec::new();
    if !whole.is_empty() {
        parts.push(format!("column{} {}", if whole.len() > 1 { "s" } else { "" }, whole.join(", ")));
    }
    parts.extend(single);
    parts.join("; ")
}
