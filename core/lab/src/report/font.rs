//! The font plots are drawn with. plotters draws text through ab_glyph, which needs a TrueType
//! file at run time: `$LAB_FONT`, else a common system font, else whatever `fc-match` names.
//! Without one, plots are skipped with a note (tables never need a font).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The family name plots ask for.
pub const FAMILY: &str = "sans-serif";

const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

static REGISTERED: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Registers a font for plot text (once per process) and returns its file, or `None` when no
/// usable font was found.
pub fn ensure() -> Option<&'static Path> {
    REGISTERED.get_or_init(register).as_deref()
}

fn register() -> Option<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("LAB_FONT") {
        paths.push(PathBuf::from(p));
    }
    paths.extend(CANDIDATES.iter().map(PathBuf::from));
    if let Ok(out) =
        std::process::Command::new("fc-match").args(["--format=%{file}", "sans-serif:style=Regular"]).output()
    {
        let file = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !file.is_empty() {
            paths.push(PathBuf::from(file));
        }
    }
    for path in paths {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        // plotters keeps fonts for the whole process: one small, deliberate leak.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
            return Some(path);
        }
    }
    None
}
