//! Metric-vs-step plots: one figure per (metric, column), one line per row (the mean over its
//! seeds of `eval/<metric>` in metrics.jsonl), the paper's value as a dashed line in the row's
//! colour. Each figure is written as PNG and SVG beside the tables.
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::font;
use super::table::Table;
use super::ReportError;

const SIZE: (u32, u32) = (800, 500);

/// Distinguishable line colours (colour-blind friendly order).
const COLOURS: &[(u8, u8, u8)] = &[
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (230, 159, 0),
    (90, 90, 90),
    (240, 228, 66),
];

/// One line of a figure.
struct Series<'a> {
    name: &'a str,
    points: &'a [(u64, f64)],
    reference: Option<f64>,
}

/// One figure.
struct Figure<'a> {
    caption: String,
    y_label: &'a str,
    series: Vec<Series<'a>>,
}

/// `100%` → `100pct`: a column label as a file name part.
pub fn slug(label: &str) -> String {
    let s: String = label
        .replace('%', "pct")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    s.trim_matches('_').to_string()
}

/// Writes every figure that has data; returns the files written, or a note saying why plots
/// were skipped.
pub fn write_all(table: &Table, dir: &Path) -> Result<(Vec<PathBuf>, Option<String>), ReportError> {
    let mut written = Vec::new();
    let mut figures = Vec::new();
    for (i, m) in table.metrics.iter().enumerate() {
        // A metric shown twice (best and final FID) has one curve, the evaluations over steps:
        // drawn once, under its name rather than either label.
        if table.metrics[..i].iter().any(|other| other.name == m.name) {
            continue;
        }
        let shared = table.metrics.iter().filter(|other| other.name == m.name).count() > 1;
        let label = if shared { m.name.as_str() } else { m.label.as_str() };
        for (c, col) in table.columns.iter().enumerate() {
            let series: Vec<Series> = table
                .rows
                .iter()
                .enumerate()
                .map(|(r, row)| {
                    let v = &table.cell(r, c).values[i];
                    Series { name: &row.id, points: &v.curve, reference: v.reference }
                })
                .collect();
            if series.iter().all(|s| s.points.is_empty()) {
                continue;
            }
            let (caption, stem) = if table.has_columns {
                (
                    format!("{label} vs step: {} {}", table.column_title, col.label),
                    format!("{}-{}-{}", table.name, slug(&m.name), slug(&col.label)),
                )
            } else {
                (format!("{label} vs step"), format!("{}-{}", table.name, slug(&m.name)))
            };
            figures.push((Figure { caption, y_label: label, series }, stem));
        }
    }
    if figures.is_empty() {
        return Ok((written, None));
    }
    if font::ensure().is_none() {
        return Ok((written, Some("Plots skipped: no TrueType font found; set LAB_FONT=/path/to/font.ttf.".into())));
    }
    for (figure, stem) in figures {
        let png = dir.join(format!("{stem}.png"));
        let canvas = image::RgbImage::new(SIZE.0, SIZE.1);
        save_png(&png, canvas, |root| draw(root, &figure))?;
        written.push(png);

        let svg = dir.join(format!("{stem}.svg"));
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
            draw(&root, &figure).map_err(|e| ReportError::write(&svg, e))?;
        }
        std::fs::write(&svg, text).map_err(|e| ReportError::write(&svg, e))?;
        written.push(svg);
    }
    Ok((written, None))
}

/// Draws on `canvas` with plotters and saves it as `path` (PNG).
pub(super) fn save_png(
    path: &Path,
    canvas: image::RgbImage,
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
) -> Result<(), ReportError> {
    let size = canvas.dimensions();
    let mut pixels = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        draw(&root).map_err(|e| ReportError::write(path, e))?;
    }
    image::RgbImage::from_raw(size.0, size.1, pixels)
        .expect("the buffer holds the canvas's pixels")
        .save(path)
        .map_err(|e| ReportError::write(path, e))
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let xs = figure.series.iter().flat_map(|s| s.points.iter().map(|p| p.0 as f64));
    let (x0, x1) = bounds(xs);
    let ys = figure.series.iter().flat_map(|s| s.points.iter().map(|p| p.1).chain(s.reference));
    let (y0, y1) = bounds(ys);
    let pad = (y1 - y0) * 0.05;
    let mut chart = ChartBuilder::on(root)
        .caption(&figure.caption, (font::FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("generator step")
        .x_label_formatter(&step_label)
        .light_line_style(RGBColor(235, 235, 235))
        .y_desc(figure.y_label)
        .label_style((font::FAMILY, 13))
        .axis_desc_style((font::FAMILY, 15))
        .draw()
        .map_err(err)?;
    for (i, s) in figure.series.iter().enumerate() {
        let (r, g, b) = COLOURS[i % COLOURS.len()];
        let colour = RGBColor(r, g, b);
        if !s.points.is_empty() {
            let points: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0 as f64, p.1)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(err)?
                .label(s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled()))).map_err(err)?;
        }
        if let Some(v) = s.reference {
            chart
                .draw_series(DashedLineSeries::new(vec![(x0, v), (x1, v)], 6, 4, colour.stroke_width(1)))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((font::FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// `4000`, `250k`: steps as whole numbers, thousands shortened from 10k on.
fn step_label(x: &f64) -> String {
    if x.abs() >= 10_000.0 {
        let k = x / 1000.0;
        if (k - k.round()).abs() < 1e-9 {
            return format!("{k:.0}k");
        }
        return format!("{k:.1}k");
    }
    format!("{x:.0}")
}

/// The range of the values, widened when they are all equal.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let d = lo.abs().max(1.0) * 0.5;
        return (lo - d, hi + d);
    }
    (lo, hi)
}
