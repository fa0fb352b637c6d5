//! The Markdown table: one line per row, a value column per (column, metric), the paper's value
//! and the delta beside each when there is a reference; then the legend, protocol and notes.
use super::table::Table;
use super::text;

/// The whole Markdown document.
pub fn render(table: &Table) -> String {
    let mut out = format!("# {}\n\n", table.title);
    let mut head = vec![escape(&table.row_title)];
    let mut align = vec![":--".to_string()];
    for c in 0..table.columns.len() {
        for m in &table.metrics {
            head.push(escape(&text::value_heading(table, c, m)));
            align.push("--:".into());
            if table.reference.is_some() {
                head.extend(["paper".to_string(), "Δ".to_string()]);
                align.extend(["--:".to_string(), "--:".to_string()]);
            }
        }
    }
    out.push_str(&line(&head));
    out.push_str(&line(&align));
    for (r, row) in table.rows.iter().enumerate() {
        let mut cells = vec![escape(&row.label)];
        for c in 0..table.columns.len() {
            for (i, m) in table.metrics.iter().enumerate() {
                let v = &table.cell(r, c).values[i];
                let ours = text::ours(v, m, " ± ");
                cells.push(if v.best { format!("**{ours}**") } else { ours });
                if table.reference.is_some() {
                    cells.push(text::paper(v, m));
                    cells.push(text::delta(v, m));
                }
            }
        }
        out.push_str(&line(&cells));
    }
    out.push('\n');
    out.push_str(&text::legend(table).replace("Bold:", "**Bold**:"));
    out.push_str("\n\n");
    if let Some(p) = text::paper_line(table) {
        out.push_str(&p);
        out.push_str("\n\n");
    }
    for p in text::protocol_lines(table) {
        out.push_str(&p);
        out.push_str("\n\n");
    }
    if !table.notes.is_empty() {
        out.push_str("Notes:\n");
        for n in &table.notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn line(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// Pipes would split a cell.
fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}
