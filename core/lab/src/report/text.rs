//! The words and numbers every output format shares: a cell's value, the paper's, the delta,
//! and the sentence that says what the values are.
use super::spec::Pick;
use super::table::{CellValue, MetricColumn, Table};

/// What a missing value looks like.
pub const MISSING: &str = "—";

/// `14.21 ± 0.35 (n=3)`, `14.21 (n=1)` or `—`.
pub fn ours(v: &CellValue, m: &MetricColumn, plus_minus: &str) -> String {
    match &v.stat {
        None => MISSING.to_string(),
        Some(s) => match s.std {
            Some(std) => format!("{}{plus_minus}{} (n={})", m.format.format(s.mean), m.format.format(std), s.n),
            None => format!("{} (n={})", m.format.format(s.mean), s.n),
        },
    }
}

/// The paper's value, or `—`.
pub fn paper(v: &CellValue, m: &MetricColumn) -> String {
    v.reference.map(|r| m.format.format(r)).unwrap_or_else(|| MISSING.to_string())
}

/// Ours minus the paper's, signed, or `—`.
pub fn delta(v: &CellValue, m: &MetricColumn) -> String {
    v.delta().map(|d| m.format.signed(d)).unwrap_or_else(|| MISSING.to_string())
}

/// The heading of a value column: `100% IS`, or `IS` for a table without columns.
pub fn value_heading(table: &Table, column: usize, m: &MetricColumn) -> String {
    if table.has_columns {
        format!("{} {}", table.columns[column].label, m.label)
    } else {
        m.label.clone()
    }
}

/// What the numbers are: aggregation, which checkpoint, what bold means, what Δ is.
pub fn legend(table: &Table) -> String {
    let labels = |pick: Pick| -> Vec<&str> {
        table.metrics.iter().filter(|m| m.pick == pick).map(|m| m.label.as_str()).collect()
    };
    let mut parts =
        vec!["Each value is the mean ± sample standard deviation over seeds (n: the number of seeds).".to_string()];
    let best = labels(Pick::Best);
    if !best.is_empty() {
        parts.push(format!("{}: at each run's best checkpoint (selected by its primary metric).", best.join(", ")));
    }
    let last = labels(Pick::Final);
    if !last.is_empty() {
        parts.push(format!("{}: at the end of training.", last.join(", ")));
    }
    let directions: Vec<String> = table
        .metrics
        .iter()
        .filter_map(|m| {
            m.higher_is_better.map(|h| format!("{} {} is better", m.label, if h { "higher" } else { "lower" }))
        })
        .collect();
    if !directions.is_empty() {
        parts.push(format!("Bold: the best mean of each column ({}).", directions.join(", ")));
    }
    if table.reference.is_some() {
        parts.push("Δ = ours − paper.".to_string());
    }
    parts.join(" ")
}

/// The paper's provenance, in one sentence.
pub fn paper_line(table: &Table) -> Option<String> {
    let r = table.reference.as_ref()?;
    let mut s = format!("Paper: {}. Source: {}", r.title.trim_end_matches('.'), r.source.trim_end_matches('.'));
    if !r.protocol.is_empty() {
        s.push_str(&format!(". Paper protocol: {}", r.protocol.trim_end_matches('.')));
    }
    s.push('.');
    Some(s)
}

/// The protocol footnote(s), each a sentence.
pub fn protocol_lines(table: &Table) -> Vec<String> {
    match table.protocols.as_slice() {
        [] => vec!["Evaluation protocol: unknown (no run has an evaluation in its summary.json).".to_string()],
        [one] if one.applies_to.is_none() => vec![format!("Evaluation protocol: {}.", one.text)],
        many => many
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!("Evaluation protocol {} ({}): {}.", i + 1, p.applies_to.as_deref().unwrap_or("all"), p.text)
            })
            .collect(),
    }
}
