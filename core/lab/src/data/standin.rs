//! Two-domain stand-ins built from Fashion-MNIST, so that image-to-image translation runs on any
//! machine without a download. They are smoke-test domains, not the papers' data sets: a model
//! that learns them shows the machinery works, not how it compares with published numbers
//! (facades, maps and horse2zebra load through the real `paired-folder` and `unpaired-folders`
//! loaders once a user has them).
//!
//! Both are written once, as real files in the papers' layouts, under the data root, and then
//! read back through those same loaders:
//! - `edges2fashion` (paired, pix2pix's layout): `train/` and `test/` hold A|B PNGs, 64×32 grey:
//!   A is the Sobel gradient magnitude of the garment (white edges on black), B the garment.
//! - `fashion2inverted` (unpaired, CycleGAN's layout): `trainA/`, `testA/` hold garments;
//!   `trainB/`, `testB/` hold *other* garments, inverted (255 − x) and turned a quarter
//!   clockwise. A and B come from disjoint images, so no pair exists to be learnt.
//!
//! Each 28×28 image is padded to 32×32 with background (the networks' strided halvings need a
//! power of two), and lies in a subfolder named after its class (`0` … `9`), which the folder
//! loader reads back as labels. The sets are small on purpose (6,000 training pairs; 3,000
//! images per unpaired domain), the first images of Fashion-MNIST's splits in order.
use std::path::{Path, PathBuf};

use super::{idx, DataError, Dataset};

/// The stand-ins' names, as `[data] dataset` and `lab data make` take them.
pub const NAMES: &[&str] = &["edges2fashion", "fashion2inverted"];

/// The side of every stored image.
pub const SIDE: usize = 32;
const SOURCE_SIDE: usize = 28;
/// Training and test pairs of `edges2fashion`.
const PAIRS: (i64, i64) = (6000, 1000);
/// Images per domain of `fashion2inverted`, training and test.
const PER_DOMAIN: (i64, i64) = (3000, 500);

/// The stand-in's folder under `root`, built first when it is not there yet.
pub fn ensure(name: &str, root: &Path, download: bool) -> Result<PathBuf, DataError> {
    let dir = root.join(name);
    if dir.is_dir() {
        return Ok(dir);
    }
    eprintln!("building the stand-in data set `{name}` from Fashion-MNIST into {} (once)", dir.display());
    build(name, root, download)
}

/// Writes the stand-in `name` under `root` from Fashion-MNIST (found or fetched as for
/// `dataset = "fashion-mnist"`), replacing nothing: it is written to a temporary folder and
/// renamed into place, so an interrupted build leaves no half set behind.
pub fn build(name: &str, root: &Path, download: bool) -> Result<PathBuf, DataError> {
    if !NAMES.contains(&name) {
        return Err(DataError::NotFetchable {
            dataset: name.to_string(),
            reason: format!("`lab data make` builds {}", NAMES.join(" and ")),
        });
    }
    let train = idx::load("fashion-mnist", root, "train", download)?;
    let test = idx::load("fashion-mnist", root, "test", download)?;
    let dir = root.join(name);
    let partial = root.join(format!(".{name}.partial-{}", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(DataError::io(&partial, "remove the unfinished folder"))?;
    }
    match name {
        "edges2fashion" => {
            write_pairs(&train, 0, PAIRS.0, &partial.join("train"))?;
            write_pairs(&test, 0, PAIRS.1, &partial.join("test"))?;
        }
        _ => {
            let keep = |x: Vec<u8>| x;
            write_domain(&train, 0, PER_DOMAIN.0, &partial.join("trainA"), keep)?;
            write_domain(&train, PER_DOMAIN.0, PER_DOMAIN.0, &partial.join("trainB"), invert_and_turn)?;
            write_domain(&test, 0, PER_DOMAIN.1, &partial.join("testA"), keep)?;
            write_domain(&test, PER_DOMAIN.1, PER_DOMAIN.1, &partial.join("testB"), invert_and_turn)?;
        }
    }
    let readme = partial.join("README.txt");
    std::fs::write(&readme, describe(name)).map_err(DataError::io(&readme, "write"))?;
    match std::fs::rename(&partial, &dir) {
        Ok(()) => Ok(dir),
        // Another process finished the same set first: theirs is as good as ours.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&partial);
            Ok(dir)
        }
        Err(e) => Err(DataError::Io { path: dir, action: "move the finished set into place", source: e }),
    }
}

fn describe(name: &str) -> String {
    let what = match name {
        "edges2fashion" => "paired: A = Sobel edges of a Fashion-MNIST garment, B = the garment (A|B PNGs in train/ and test/)",
        _ => "unpaired: A = Fashion-MNIST garments, B = other garments inverted and turned a quarter clockwise (trainA/, trainB/, testA/, testB/)",
    };
    format!(
        "{name}: a stand-in for image-to-image translation built by `lab data make {name}` from Fashion-MNIST.\n\
         {what}.\nA smoke-test domain, not a paper's data set; 28x28 images padded to 32x32; subfolders are the \
         classes 0-9.\n"
    )
}

/// Image `i` of `ds` as 32×32 bytes, padded with background (0) on every side.
fn padded(ds: &Dataset, i: i64) -> Vec<u8> {
    let pixels = Vec::<u8>::try_from(ds.images.get(i).flatten(0, -1)).expect("uint8 pixels");
    let margin = (SIDE - SOURCE_SIDE) / 2;
    let mut out = vec![0u8; SIDE * SIDE];
    for y in 0..SOURCE_SIDE {
        let row = (y + margin) * SIDE + margin;
        out[row..row + SOURCE_SIDE].copy_from_slice(&pixels[y * SOURCE_SIDE..(y + 1) * SOURCE_SIDE]);
    }
    out
}

/// The Sobel gradient magnitude of a 32×32 image (zero outside it), divided by 4 so that a step
/// from black to white is exactly white.
pub fn sobel_edges(image: &[u8]) -> Vec<u8> {
    let at = |x: isize, y: isize| -> f64 {
        if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) {
            image[y as usize * SIDE + x as usize] as f64
        } else {
            0.0
        }
    };
    let mut out = vec![0u8; SIDE * SIDE];
    for y in 0..SIDE as isize {
        for x in 0..SIDE as isize {
            let gx = (at(x + 1, y - 1) + 2.0 * at(x + 1, y) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2.0 * at(x - 1, y) + at(x - 1, y + 1));
            let gy = (at(x - 1, y + 1) + 2.0 * at(x, y + 1) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2.0 * at(x, y - 1) + at(x + 1, y - 1));
            out[y as usize * SIDE + x as usize] = ((gx * gx + gy * gy).sqrt() / 4.0).round().min(255.0) as u8;
        }
    }
    out
}

/// The image inverted (255 − x) and turned a quarter clockwise: output row y, column x is input
/// row `SIDE − 1 − x`, column y.
pub fn invert_and_turn(image: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0u8; SIDE * SIDE];
    for y in 0..SIDE {
        for x in 0..SIDE {
            out[y * SIDE + x] = 255 - image[(SIDE - 1 - x) * SIDE + y];
        }
    }
    out
}

/// Where image `i` (of class `label`) goes under `dir`.
fn file_for(dir: &Path, ds: &Dataset, i: i64) -> Result<PathBuf, DataError> {
    let label = ds.labels.as_ref().map_or(0, |l| l.int64_value(&[i]));
    let class_dir = dir.join(label.to_string());
    std::fs::create_dir_all(&class_dir).map_err(DataError::io(&class_dir, "create the folder"))?;
    Ok(class_dir.join(format!("{i:05}.png")))
}

fn save(path: &Path, width: u32, pixels: Vec<u8>) -> Result<(), DataError> {
    let image = image::GrayImage::from_raw(width, SIDE as u32, pixels).expect("a buffer of the image's size");
    image.save(path).map_err(|source| DataError::Image { path: path.to_path_buf(), source })
}

/// `count` A|B pairs from image `start` of `ds`: edges on the left, the garment on the right.
fn write_pairs(ds: &Dataset, start: i64, count: i64, dir: &Path) -> Result<(), DataError> {
    for i in start..start + count.min(ds.len() - start) {
        let garment = padded(ds, i);
        let edges = sobel_edges(&garment);
        let mut pair = Vec::with_capacity(2 * SIDE * SIDE);
        for y in 0..SIDE {
            pair.extend_from_slice(&edges[y * SIDE..(y + 1) * SIDE]);
            pair.extend_from_slice(&garment[y * SIDE..(y + 1) * SIDE]);
        }
        save(&file_for(dir, ds, i)?, 2 * SIDE as u32, pair)?;
    }
    Ok(())
}

/// `count` images from image `start` of `ds`, each passed through `transform`.
fn write_domain(
    ds: &Dataset,
    start: i64,
    count: i64,
    dir: &Path,
    transform: impl Fn(Vec<u8>) -> Vec<u8>,
) -> Result<(), DataError> {
    for i in start..start + count.min(ds.len() - start) {
        save(&file_for(dir, ds, i)?, SIDE as u32, transform(padded(ds, i)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Vec<u8> {
        // A white 8×8 square at rows/columns 12..20 on black.
        let mut img = vec![0u8; SIDE * SIDE];
        for y in 12..20 {
            for x in 12..20 {
                img[y * SIDE + x] = 255;
            }
        }
        img
    }

    #[test]
    fn edges_are_white_on_the_square_border_and_black_inside_and_outside() {
        let edges = sobel_edges(&square());
        let at = |x: usize, y: usize| edges[y * SIDE + x];
        // Inside the square and far outside it the image is flat.
        assert_eq!(at(15, 15), 0);
        assert_eq!(at(2, 2), 0);
        // Across a vertical edge mid-side: gx = 4 · 255, gy = 0, so exactly white.
        assert_eq!(at(11, 15), 255);
        assert_eq!(at(12, 15), 255);
        // At a corner's outside diagonal only one pixel of the kernel sees the square: 255 / 4 · √2.
        assert_eq!(at(11, 11), ((255.0f64 * 2f64.sqrt()) / 4.0).round() as u8);
    }

    #[test]
    fn inverting_and_turning_maps_the_top_left_corner_to_the_top_right() {
        let mut img = vec![0u8; SIDE * SIDE];
        img[0] = 200; // row 0, column 0
        img[SIDE - 1] = 100; // row 0, column 31
        let out = invert_and_turn(img);
        // A quarter turn clockwise takes the top-left corner to the top-right, the top-right
        // to the bottom-right.
        assert_eq!(out[SIDE - 1], 255 - 200);
        assert_eq!(out[(SIDE - 1) * SIDE + SIDE - 1], 255 - 100);
        assert_eq!(out[0], 255);
    }
}
