//! The sample gallery (`gallery = true` in a spec): one picture beside the tables,
//! `<name>-samples.png`, that puts each cell's newest sample grid next to the others, captioned
//! with the row (and column) and the seed and step it shows. A zoo table says which system has
//! the lower FID; the gallery shows what that means.
//!
//! Each tile is the `samples/step_<N>.png` with the largest N in the cell's lowest-seed run, scaled
//! to fit a square (nearest-neighbour when enlarging, so pixels stay crisp); a cell without runs
//! or without a grid gets a grey tile that says so.
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font;
use super::plot::save_png;
use super::table::Table;
use super::ReportError;

/// A tile's side in pixels.
const TILE: u32 = 256;
/// Space between tiles and around the edge.
const GAP: u32 = 16;
/// The two caption lines under a tile.
const CAPTION: u32 = 42;
/// The title band at the top.
const HEADER: u32 = 40;
/// Tiles per line when the table has no columns.
const MAX_ACROSS: usize = 4;
const EMPTY: Rgb<u8> = Rgb([232, 232, 232]);

/// One tile: what it shows and its caption.
struct Tile {
    title: String,
    detail: String,
    /// The scaled grid, or a grey square when the cell has none.
    image: RgbImage,
    empty: bool,
}

impl Tile {
    fn empty(title: String, detail: String) -> Self {
        Self { title, detail, image: RgbImage::from_pixel(TILE, TILE, EMPTY), empty: true }
    }
}

/// The newest sample grid of a run folder: (step, file).
pub fn newest_grid(run: &Path) -> Option<(u64, PathBuf)> {
    std::fs::read_dir(run.join("samples"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step_")?.strip_suffix(".png")?.parse::<u64>().ok()?;
            Some((step, e.path()))
        })
        .max_by_key(|(step, _)| *step)
}

/// `image` scaled to fit a `TILE` square, keeping its aspect ratio.
fn fit(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let scale = f64::from(TILE) / f64::from(w.max(h));
    let (nw, nh) = (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
    let filter = if scale >= 1.0 { FilterType::Nearest } else { FilterType::Triangle };
    image::imageops::resize(image, nw, nh, filter)
}

fn tiles(table: &Table) -> Result<Vec<Tile>, ReportError> {
    let mut tiles = Vec::new();
    for (r, row) in table.rows.iter().enumerate() {
        for (c, column) in table.columns.iter().enumerate() {
            let title = if table.has_columns { format!("{} @ {}", row.id, column.id) } else { row.id.clone() };
            let Some((seed, folder)) = table.cell(r, c).folders.first() else {
                tiles.push(Tile::empty(title, "no finished run".into()));
                continue;
            };
            let Some((step, file)) = newest_grid(folder) else {
                tiles.push(Tile::empty(title, format!("seed {seed}: no sample grid")));
                continue;
            };
            let image = image::open(&file).map_err(|e| ReportError::read(&file, e))?.to_rgb8();
            tiles.push(Tile { title, detail: format!("seed {seed}, step {step}"), image: fit(&image), empty: false });
        }
    }
    Ok(tiles)
}

/// `text` shortened with an ellipsis until it fits `width` pixels in `style`.
fn fitted<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    style: &TextStyle,
    width: u32,
) -> String {
    let fits = |t: &str| area.estimate_text_size(t, style).map_or(true, |(w, _)| w <= width);
    if fits(text) {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate = format!("{}…", chars.iter().collect::<String>().trim_end());
        if fits(&candidate) {
            return candidate;
        }
    }
    String::new()
}

/// Writes `<dir>/<name>-samples.png`; returns it, or a note saying why there is none.
pub fn write(table: &Table, dir: &Path) -> Result<(Option<PathBuf>, Option<String>), ReportError> {
    let tiles = tiles(table)?;
    if tiles.iter().all(|t| t.empty) {
        return Ok((None, Some("No gallery: no counted run has a sample grid (`samples/step_<N>.png`).".into())));
    }
    if font::ensure().is_none() {
        return Ok((None, Some("Gallery skipped: no TrueType font found; set LAB_FONT=/path/to/font.ttf.".into())));
    }
    let across = if table.has_columns { table.columns.len() } else { tiles.len().min(MAX_ACROSS) };
    let down = tiles.len().div_ceil(across) as u32;
    let across = across as u32;
    let size = (across * TILE + (across + 1) * GAP, HEADER + down * (TILE + CAPTION) + (down + 1) * GAP);
    let origin = |i: usize| {
        let (col, line) = (i as u32 % across, i as u32 / across);
        (GAP + col * (TILE + GAP), HEADER + GAP + line * (TILE + CAPTION + GAP))
    };

    let mut canvas = RgbImage::from_pixel(size.0, size.1, Rgb([255, 255, 255]));
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = origin(i);
        // Centred in its square.
        let dx = (TILE - tile.image.width()) / 2;
        let dy = (TILE - tile.image.height()) / 2;
        image::imageops::replace(&mut canvas, &tile.image, i64::from(x + dx), i64::from(y + dy));
    }

    let path = dir.join(format!("{}-samples.png", table.name));
    save_png(&path, canvas, |root| {
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        let heading = TextStyle::from((font::FAMILY, 20).into_font()).color(&BLACK);
        let title = TextStyle::from((font::FAMILY, 15).into_font()).color(&BLACK);
        let detail = TextStyle::from((font::FAMILY, 12).into_font()).color(&RGBColor(110, 110, 110));
        let centred = |s: TextStyle<'static>| s.pos(Pos::new(HPos::Center, VPos::Top));
        let text = fitted(root, &table.title, &heading, size.0 - 2 * GAP);
        root.draw_text(&text, &heading, (GAP as i32, (GAP / 2 + 4) as i32)).map_err(err)?;
        for (i, tile) in tiles.iter().enumerate() {
            let (x, y) = origin(i);
            let cx = (x + TILE / 2) as i32;
            let below = (y + TILE + 6) as i32;
            let name = fitted(root, &tile.title, &title, TILE);
            root.draw_text(&name, &centred(title.clone()), (cx, below)).map_err(err)?;
            root.draw_text(&tile.detail, &centred(detail.clone()), (cx, below + 19)).map_err(err)?;
            if tile.empty {
                root.draw_text("no samples", &centred(detail.clone()), (cx, (y + TILE / 2 - 6) as i32)).map_err(err)?;
            }
        }
        root.present().map_err(err)
    })?;
    Ok((Some(path), None))
}
