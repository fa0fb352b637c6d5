//! The CSV: one line per (row, column, metric) with the raw numbers, for plotting and checks.
//! Numbers are rounded to 10 decimals (enough for any metric, without floating-point noise
//! such as 9.799999999999999); empty fields mean "none" (no runs, a single seed, or no paper
//! value).
use super::table::Table;

/// The header of the CSV.
pub const HEADER: &str = "row,row_label,row_value,column,column_label,column_value,metric,value,mean,std,n,seeds,reference,delta,best_in_column";

/// The whole CSV file.
pub fn render(table: &Table) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    let num = |v: Option<f64>| v.map(number).unwrap_or_default();
    for (r, row) in table.rows.iter().enumerate() {
        for (c, col) in table.columns.iter().enumerate() {
            for (i, m) in table.metrics.iter().enumerate() {
                let v = &table.cell(r, c).values[i];
                let s = v.stat.as_ref();
                let seeds =
                    s.map(|s| s.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")).unwrap_or_default();
                let fields = [
                    field(&row.id),
                    field(&row.label),
                    field(&row.value),
                    field(&col.id),
                    field(&col.label),
                    field(&col.value),
                    field(&m.name),
                    m.pick.as_str().to_string(),
                    num(s.map(|s| s.mean)),
                    num(s.and_then(|s| s.std)),
                    s.map(|s| s.n).unwrap_or(0).to_string(),
                    seeds,
                    num(v.reference),
                    num(v.delta()),
                    v.best.to_string(),
                ];
                out.push_str(&fields.join(","));
                out.push('\n');
            }
        }
    }
    out
}

/// `9.8`, `-0.06`, `10`: 10 decimals at most, trailing zeros dropped.
fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let s = format!("{x:.10}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Quotes a field when it holds a comma, a quote or a newline (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
