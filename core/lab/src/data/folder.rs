//! `image-folder`: every PNG and JPEG file under a folder, resized to a square.
//!
//! Files are found recursively (hidden files and folders skipped), sorted by path so the order,
//! and therefore subsets, are deterministic. Each image is converted to `channels` (grey or RGB;
//! alpha is dropped) and resized to `image_size` × `image_size` with a triangle (bilinear)
//! filter, ignoring its aspect ratio. When every file sits inside a subfolder, the top-level
//! subfolder names (sorted) become class ids 0, 1, …; if any file sits directly in the folder,
//! the dataset is unlabelled.
//!
//! Two-domain sets for image-to-image translation:
//! - `paired-folder` reads pix2pix's aligned layout (each file holds A and B side by side, A on
//!   the left; [`load_paired`]) or two folders whose files pair up by name
//!   ([`load_paired_folders`]);
//! - `unpaired-folders` reads two folders, one per domain, in any numbers (CycleGAN's
//!   trainA/trainB; [`load_unpaired`]).
//!
//! Which folder holds a split is [`split_folder`]'s rule, shared by both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::{DataError, Dataset, DomainB};

const NAME: &str = "image-folder";
const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Which folder is being read, for errors: the dataset, the `[data]` key that names the folder
/// and what it should hold.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub dataset: &'static str,
    pub key: &'static str,
    pub holds: &'static str,
}

impl Source {
    const IMAGES: Source = Source { dataset: NAME, key: "data.path", holds: "images" };
}

/// Loads every image under `dir` as `channels` x `size` x `size`.
pub fn load(dir: &Path, size: i64, channels: i64) -> Result<Dataset, DataError> {
    load_from(dir, size, channels, Source::IMAGES)
}

fn load_from(dir: &Path, size: i64, channels: i64, source: Source) -> Result<Dataset, DataError> {
    let (files, labels, num_classes) = list(dir, source)?;
    let paths: Vec<PathBuf> = files.iter().map(|rel| dir.join(rel)).collect();
    let pixels = decode_all(&paths, size as u32, channels as u8, Part::Whole)?;
    let images = tch::Tensor::from_slice(&pixels).view([files.len() as i64, channels, size, size]);
    Ok(Dataset::whole(source.dataset, images, labels.map(|l| tch::Tensor::from_slice(&l)), num_classes))
}

/// The folder that holds `split` of a two-domain set, given the folder `key` names: the papers'
/// layouts keep each split in a subfolder of the set (`facades/train`, `horse2zebra/testA`), so
/// `base/<split><suffix>` when it exists; otherwise `base` itself holds the training split (a
/// folder of images pointed at directly).
pub fn split_folder(base: &Path, split: &str, suffix: &str, key: &str) -> Result<PathBuf, DataError> {
    let sub = base.join(format!("{split}{suffix}"));
    if sub.is_dir() {
        return Ok(sub);
    }
    if split == "train" && suffix.is_empty() {
        return Ok(base.to_path_buf());
    }
    Err(DataError::Missing {
        dataset: "two-domain data".into(),
        expected: format!("the {split} split's folder {}", sub.display()),
        fix: format!(
            "set {key} to the data set's folder holding `{split}{suffix}/` (pix2pix: train/ and test/; CycleGAN: \
             trainA/, trainB/, testA/, testB/), or use data.split = \"train\" with {key} pointing at a folder of images"
        ),
    })
}

/// pix2pix's aligned layout: each image under `dir` holds A | B side by side. Both halves are
/// resized to `size` × `size`; A becomes the images, B the aligned second domain.
pub fn load_paired(dir: &Path, size: i64, channels: i64) -> Result<Dataset, DataError> {
    let source = Source { dataset: "paired-folder", key: "data.path", holds: "A|B images (A on the left half)" };
    let (files, labels, num_classes) = list(dir, source)?;
    let paths: Vec<PathBuf> = files.iter().map(|rel| dir.join(rel)).collect();
    // An odd width has no two equal halves: the pair would not be aligned pixel for pixel.
    for path in &paths {
        let (width, height) = dimensions(path)?;
        if width % 2 == 1 {
            return Err(DataError::format(
                path,
                format!(
                    "{width}×{height} pixels: an A|B pair needs an even width (A on the left half, B on the \
                     right, each {}×{height}); crop or pad the file, or remove it",
                    width / 2
                ),
            ));
        }
    }
    // Each half is cut out first and resized on its own, so nothing blends across the seam.
    let shape = [files.len() as i64, channels, size, size];
    let a = tch::Tensor::from_slice(&decode_all(&paths, size as u32, channels as u8, Part::Left)?).view(shape);
    let b = tch::Tensor::from_slice(&decode_all(&paths, size as u32, channels as u8, Part::Right)?).view(shape);
    let mut ds = Dataset::whole("paired-folder", a, labels.map(|l| tch::Tensor::from_slice(&l)), num_classes);
    ds.domain_b = Some(DomainB { images: b, paired: true });
    Ok(ds)
}

/// Paired images in two folders: each file under `dir_a` pairs with the file of the same relative
/// name (extension aside) under `dir_b`, and the two must be the same size.
pub fn load_paired_folders(dir_a: &Path, dir_b: &Path, size: i64, channels: i64) -> Result<Dataset, DataError> {
    let source_a = Source { dataset: "paired-folder", key: "data.path", holds: "domain A's images" };
    let source_b = Source { dataset: "paired-folder", key: "data.path_b", holds: "domain B's images" };
    let (files_a, labels, num_classes) = list(dir_a, source_a)?;
    let (files_b, _, _) = list(dir_b, source_b)?;
    let by_stem = |files: &[PathBuf]| -> BTreeMap<PathBuf, PathBuf> {
        files.iter().map(|f| (f.with_extension(""), f.clone())).collect()
    };
    let (stems_a, stems_b) = (by_stem(&files_a), by_stem(&files_b));
    let only_a: Vec<&PathBuf> = stems_a.iter().filter(|(s, _)| !stems_b.contains_key(*s)).map(|(_, f)| f).collect();
    let only_b: Vec<&PathBuf> = stems_b.iter().filter(|(s, _)| !stems_a.contains_key(*s)).map(|(_, f)| f).collect();
    if !only_a.is_empty() || !only_b.is_empty() {
        let some = |files: &[&PathBuf]| {
            let shown: Vec<String> = files.iter().take(3).map(|f| f.display().to_string()).collect();
            let more = if files.len() > 3 { format!(", and {} more", files.len() - 3) } else { String::new() };
            format!("{}{more}", shown.join(", "))
        };
        let mut parts = Vec::new();
        if !only_a.is_empty() {
            parts.push(format!("{} file(s) only in {} ({})", only_a.len(), dir_a.display(), some(&only_a)));
        }
        if !only_b.is_empty() {
            parts.push(format!("{} file(s) only in {} ({})", only_b.len(), dir_b.display(), some(&only_b)));
        }
        return Err(DataError::format(
            dir_a,
            format!(
                "the paired folders' names do not match: {}. Each image in data.path needs one of the same \
                 name (any extension) in data.path_b; rename or remove the unmatched files",
                parts.join("; ")
            ),
        ));
    }
    let paths_a: Vec<PathBuf> = files_a.iter().map(|rel| dir_a.join(rel)).collect();
    let paths_b: Vec<PathBuf> = files_a.iter().map(|rel| dir_b.join(&stems_b[&rel.with_extension("")])).collect();
    for (a, b) in paths_a.iter().zip(&paths_b) {
        let (size_a, size_b) = (dimensions(a)?, dimensions(b)?);
        if size_a != size_b {
            return Err(DataError::format(
                a,
                format!(
                    "{}×{} pixels, but its pair {} is {}×{}: the two images of a pair must be the same size, \
                     pixel for pixel; resize one of them, or remove the pair",
                    size_a.0,
                    size_a.1,
                    b.display(),
                    size_b.0,
                    size_b.1
                ),
            ));
        }
    }
    let shape = [files_a.len() as i64, channels, size, size];
    let a = tch::Tensor::from_slice(&decode_all(&paths_a, size as u32, channels as u8, Part::Whole)?).view(shape);
    let b = tch::Tensor::from_slice(&decode_all(&paths_b, size as u32, channels as u8, Part::Whole)?).view(shape);
    let mut ds = Dataset::whole("paired-folder", a, labels.map(|l| tch::Tensor::from_slice(&l)), num_classes);
    ds.domain_b = Some(DomainB { images: b, paired: true });
    Ok(ds)
}

/// CycleGAN's unpaired layout: domain A's images under `dir_a`, domain B's under `dir_b`, in any
/// numbers; both resized to `size` × `size`. Domain A's class subfolders, if any, are its labels.
pub fn load_unpaired(dir_a: &Path, dir_b: &Path, size: i64, channels: i64) -> Result<Dataset, DataError> {
    let source_a = Source { dataset: "unpaired-folders", key: "data.path", holds: "domain A's images" };
    let source_b = Source { dataset: "unpaired-folders", key: "data.path_b", holds: "domain B's images" };
    let a = load_from(dir_a, size, channels, source_a)?;
    let b = load_from(dir_b, size, channels, source_b)?;
    let mut ds = Dataset::whole("unpaired-folders", a.images, a.labels, a.num_classes);
    ds.domain_b = Some(DomainB { images: b.images, paired: false });
    Ok(ds)
}

/// An image's width and height, from its header.
fn dimensions(path: &Path) -> Result<(u32, u32), DataError> {
    image::image_dimensions(path).map_err(|source| DataError::Image { path: path.to_path_buf(), source })
}

/// The image files under `dir` (sorted, relative) and their class labels, if every file is in a
/// class subfolder.
#[allow(clippy::type_complexity)]
fn list(dir: &Path, source: Source) -> Result<(Vec<PathBuf>, Option<Vec<i64>>, i64), DataError> {
    if !dir.is_dir() {
        return Err(DataError::Missing {
            dataset: source.dataset.into(),
            expected: format!("a folder of PNG/JPEG {} at {}", source.holds, dir.display()),
            fix: format!("set {} to an existing folder", source.key),
        });
    }
    let mut files = Vec::new();
    collect(dir, dir, &mut files, 0)?;
    files.sort();
    if files.is_empty() {
        return Err(DataError::Missing {
            dataset: source.dataset.into(),
            expected: format!("PNG or JPEG files (.png, .jpg, .jpeg) under {}", dir.display()),
            fix: format!(
                "put {} there (subfolders become classes), or point {} at the folder that has them",
                source.holds, source.key
            ),
        });
    }
    let (labels, num_classes) = class_labels(&files);
    match &labels {
        Some(_) => {
            tracing::info!(folder = %dir.display(), images = files.len(), classes = num_classes, "image folder with class subfolders")
        }
        None => {
            tracing::info!(folder = %dir.display(), images = files.len(), "image folder, unlabelled (some files are not in a class subfolder)")
        }
    }
    Ok((files, labels, num_classes))
}

/// Appends the paths (relative to `root`) of the images under `dir`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), DataError> {
    // Deep enough for any real layout; stops symlink cycles.
    if depth > 32 {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(DataError::io(dir, "list the folder"))?;
    for entry in entries {
        let entry = entry.map_err(DataError::io(dir, "list the folder"))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Follows symlinks, so linked folders and files count.
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            collect(root, &path, out, depth + 1)?;
        } else if meta.is_file() && is_image(&path) {
            out.push(path.strip_prefix(root).expect("walked from root").to_path_buf());
        }
    }
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Class ids from top-level subfolders, if every file has one.
fn class_labels(files: &[PathBuf]) -> (Option<Vec<i64>>, i64) {
    let class_of = |rel: &PathBuf| {
        let mut parts = rel.components();
        let first = parts.next()?;
        parts.next().map(|_| first.as_os_str().to_os_string())
    };
    let Some(classes) = files.iter().map(class_of).collect::<Option<Vec<_>>>() else {
        return (None, 0);
    };
    let mut names = classes.clone();
    names.sort();
    names.dedup();
    let ids = classes.iter().map(|c| names.binary_search(c).expect("a known class") as i64).collect();
    (Some(ids), names.len() as i64)
}

/// Decodes, converts and resizes every image, in parallel, into one CHW buffer in file order.
/// Which part of each file an image is: all of it, or the left or right half (pix2pix's A|B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Whole,
    Left,
    Right,
}

fn decode_all(paths: &[PathBuf], size: u32, channels: u8, part: Part) -> Result<Vec<u8>, DataError> {
    let per_image = channels as usize * (size * size) as usize;
    let mut pixels = vec![0u8; paths.len() * per_image];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(paths.len()).max(1);
    let chunk = paths.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .zip(pixels.chunks_mut(chunk * per_image))
            .map(|(paths, out)| {
                scope.spawn(move || {
                    for (path, image) in paths.iter().zip(out.chunks_exact_mut(per_image)) {
                        decode_into(path, size, channels, part, image)?;
                    }
                    Ok::<(), DataError>(())
                })
            })
            .collect();
        // Join all, then report the first failure in file order.
        let results: Vec<_> = workers.into_iter().map(|w| w.join().expect("an image decoder panicked")).collect();
        results.into_iter().collect::<Result<(), DataError>>()
    })?;
    Ok(pixels)
}

/// Decodes `part` of one image into `out` (CHW, `channels` x `size` x `size`).
fn decode_into(path: &Path, size: u32, channels: u8, part: Part, out: &mut [u8]) -> Result<(), DataError> {
    let reader = image::ImageReader::open(path)
        .map_err(DataError::io(path, "open the image"))?
        .with_guessed_format()
        .map_err(DataError::io(path, "read the image"))?;
    let img = reader.decode().map_err(|source| DataError::Image { path: path.to_path_buf(), source })?;
    let half = img.width() / 2;
    let img = match part {
        Part::Whole => img,
        Part::Left => img.crop_imm(0, 0, half.max(1), img.height()),
        Part::Right => img.crop_imm(half, 0, (img.width() - half).max(1), img.height()),
    };
    let (width, height) = (size, size);
    let plane = (width * height) as usize;
    if channels == 1 {
        let grey = image::imageops::resize(&img.to_luma8(), width, height, FilterType::Triangle);
        out.copy_from_slice(grey.as_raw());
    } else {
        let rgb = image::imageops::resize(&img.to_rgb8(), width, height, FilterType::Triangle);
        // HWC → CHW.
        for (p, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + p] = px.0[c];
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, colour: [u8; 3]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::from_pixel(w, h, image::Rgb(colour)).save(path).unwrap();
    }

    #[test]
    fn a_paired_image_splits_into_aligned_a_and_b() {
        let tmp = tempfile::tempdir().unwrap();
        for (i, v) in [10u8, 60, 200].iter().enumerate() {
            // A on the left, B = 255 − A on the right.
            let img =
                image::RgbImage::from_fn(
                    16,
                    8,
                    |x, _| if x < 8 { image::Rgb([*v; 3]) } else { image::Rgb([255 - v; 3]) },
                );
            img.save(tmp.path().join(format!("{i}.png"))).unwrap();
        }
        let ds = load_paired(tmp.path(), 4, 3).unwrap();
        assert_eq!(ds.images.size(), [3, 3, 4, 4]);
        let b = ds.domain_b.as_ref().unwrap();
        assert!(b.paired);
        assert_eq!(b.images.size(), [3, 3, 4, 4]);
        let sum = ds.images.to_kind(tch::Kind::Int64) + b.images.to_kind(tch::Kind::Int64);
        assert_eq!(sum.min().int64_value(&[]), 255);
        assert_eq!(sum.max().int64_value(&[]), 255);
    }

    #[test]
    fn unpaired_folders_keep_their_own_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..3 {
            write_png(&tmp.path().join(format!("a/{i}.png")), 6, 6, [1, 2, 3]);
        }
        for i in 0..5 {
            write_png(&tmp.path().join(format!("b/{i}.png")), 9, 9, [200, 200, 200]);
        }
        let ds = load_unpaired(&tmp.path().join("a"), &tmp.path().join("b"), 4, 1).unwrap();
        assert_eq!(ds.images.size(), [3, 1, 4, 4]);
        let b = ds.domain_b.as_ref().unwrap();
        assert!(!b.paired);
        assert_eq!(b.images.size(), [5, 1, 4, 4]);
    }

    fn write_grey(path: &Path, w: u32, h: u32, value: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(w, h, image::Luma([value])).save(path).unwrap();
    }

    #[test]
    fn two_folders_pair_up_by_name_whatever_their_order_or_extension() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, v) in [("x", 10u8), ("y", 20), ("z", 30)] {
            write_grey(&tmp.path().join(format!("a/{name}.png")), 5, 5, v);
        }
        // B's files carry other extensions, and their values say which A they belong to.
        for (name, v) in [("z", 130u8), ("x", 110), ("y", 120)] {
            let path = tmp.path().join(format!("b/{name}.jpg"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            image::GrayImage::from_pixel(5, 5, image::Luma([v])).save(&path).unwrap();
        }
        let ds = load_paired_folders(&tmp.path().join("a"), &tmp.path().join("b"), 4, 1).unwrap();
        let b = ds.domain_b.as_ref().unwrap();
        assert!(b.paired);
        for i in 0..3 {
            let (va, vb) = (ds.images.int64_value(&[i, 0, 1, 1]), b.images.int64_value(&[i, 0, 1, 1]));
            // JPEG is lossy: within a few levels of A's value + 100.
            assert!((vb - va - 100).abs() <= 3, "pair {i}: A {va}, B {vb}");
        }
    }

    #[test]
    fn paired_folders_whose_names_do_not_match_are_refused_naming_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for name in ["1", "2", "3", "4", "5", "6"] {
            write_grey(&a.join(format!("{name}.png")), 4, 4, 0);
        }
        for name in ["1", "2", "7"] {
            write_grey(&b.join(format!("{name}.png")), 4, 4, 0);
        }
        let err = load_paired_folders(&a, &b, 4, 1).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{a}: the paired folders' names do not match: 4 file(s) only in {a} (3.png, 4.png, 5.png, and 1 \
                 more); 1 file(s) only in {b} (7.png). Each image in data.path needs one of the same name (any \
                 extension) in data.path_b; rename or remove the unmatched files",
                a = a.display(),
                b = b.display()
            )
        );
    }

    #[test]
    fn a_pair_of_different_sizes_is_refused_naming_both_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        write_grey(&a.join("1.png"), 6, 4, 0);
        write_grey(&b.join("1.png"), 6, 4, 0);
        write_grey(&a.join("2.png"), 8, 8, 0);
        write_grey(&b.join("2.png"), 8, 6, 0);
        let err = load_paired_folders(&a, &b, 4, 1).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: 8×8 pixels, but its pair {} is 8×6: the two images of a pair must be the same size, pixel \
                 for pixel; resize one of them, or remove the pair",
                a.join("2.png").display(),
                b.join("2.png").display()
            )
        );
    }

    #[test]
    fn an_a_b_image_of_odd_width_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        write_grey(&tmp.path().join("0.png"), 8, 4, 0);
        write_grey(&tmp.path().join("1.png"), 9, 4, 0);
        let err = load_paired(tmp.path(), 4, 1).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: 9×4 pixels: an A|B pair needs an even width (A on the left half, B on the right, each 4×4); \
                 crop or pad the file, or remove it",
                tmp.path().join("1.png").display()
            )
        );
    }

    #[test]
    fn an_empty_domain_is_refused_naming_its_folder_and_key() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("trainA"), tmp.path().join("trainB"));
        write_grey(&a.join("1.png"), 4, 4, 0);
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("notes.txt"), "no images here").unwrap();
        let err = load_unpaired(&a, &b, 4, 1).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "unpaired-folders: not found: expected PNG or JPEG files (.png, .jpg, .jpeg) under {}. To get it: \
                 put domain B's images there (subfolders become classes), or point data.path_b at the folder that \
                 has them",
                b.display()
            )
        );
    }

    #[test]
    fn a_split_lives_in_its_subfolder_or_in_the_folder_itself_for_training() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // A folder of images pointed at directly holds the training split only.
        assert_eq!(split_folder(root, "train", "", "data.path").unwrap(), root);
        let err = split_folder(root, "test", "", "data.path").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "two-domain data: not found: expected the test split's folder {}. To get it: set data.path to the \
                 data set's folder holding `test/` (pix2pix: train/ and test/; CycleGAN: trainA/, trainB/, testA/, \
                 testB/), or use data.split = \"train\" with data.path pointing at a folder of images",
                root.join("test").display()
            )
        );
        std::fs::create_dir_all(root.join("test")).unwrap();
        std::fs::create_dir_all(root.join("trainB")).unwrap();
        assert_eq!(split_folder(root, "test", "", "data.path").unwrap(), root.join("test"));
        assert_eq!(split_folder(root, "train", "B", "data.path").unwrap(), root.join("trainB"));
        // CycleGAN's layout has no fallback: `trainA` must exist.
        assert!(split_folder(root, "train", "A", "data.path").is_err());
    }

    #[test]
    fn subfolders_are_classes_in_sorted_order() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write_png(&d.join("dogs/b.png"), 8, 8, [0, 0, 255]);
        write_png(&d.join("cats/x/a.png"), 5, 3, [255, 0, 0]);
        write_png(&d.join("dogs/a.PNG"), 4, 4, [0, 255, 0]);
        image::RgbImage::from_pixel(6, 6, image::Rgb([10, 20, 30])).save(d.join("cats/c.jpg")).unwrap();
        std::fs::write(d.join("cats/notes.txt"), "not an image").unwrap();
        write_png(&d.join(".hidden/z.png"), 4, 4, [1, 1, 1]);

        let ds = load(d, 4, 3).unwrap();
        // Sorted: cats/c.jpg, cats/x/a.png, dogs/a.PNG, dogs/b.png.
        assert_eq!(ds.images.size(), [4, 3, 4, 4]);
        assert_eq!(ds.images.kind(), tch::Kind::Uint8);
        assert_eq!(ds.num_classes, 2);
        assert_eq!(Vec::<i64>::try_from(ds.labels.as_ref().unwrap()).unwrap(), vec![0, 0, 1, 1]);
        let at = |i: i64, c: i64| ds.images.int64_value(&[i, c, 2, 1]);
        // Solid colours survive resizing exactly (PNG is lossless; JPEG only roughly).
        assert_eq!((at(1, 0), at(1, 1), at(1, 2)), (255, 0, 0));
        assert_eq!((at(2, 0), at(2, 1), at(2, 2)), (0, 255, 0));
        assert_eq!((at(3, 0), at(3, 1), at(3, 2)), (0, 0, 255));
        assert!((at(0, 0) - 10).abs() <= 3 && (at(0, 2) - 30).abs() <= 3);

        let grey = load(d, 2, 1).unwrap();
        assert_eq!(grey.images.size(), [4, 1, 2, 2]);
        // The image crate's luma is Rec. 709: pure green is 0.7152 * 255 ≈ 182.
        assert_eq!(grey.images.int64_value(&[2, 0, 0, 0]), 182);
    }

    #[test]
    fn a_file_outside_subfolders_makes_it_unlabelled() {
        let tmp = tempfile::tempdir().unwrap();
        write_png(&tmp.path().join("a/1.png"), 3, 3, [9, 9, 9]);
        write_png(&tmp.path().join("top.png"), 3, 3, [9, 9, 9]);
        let ds = load(tmp.path(), 3, 3).unwrap();
        assert!(ds.labels.is_none());
        assert_eq!(ds.num_classes, 0);
        assert_eq!(ds.len(), 2);
    }

    #[test]
    fn errors_name_the_folder_or_file() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load(tmp.path(), 8, 3).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "image-folder: not found: expected PNG or JPEG files (.png, .jpg, .jpeg) under {}. To get it: put \
                 images there (subfolders become classes), or point data.path at the folder that has them",
                tmp.path().display()
            )
        );
        let missing = tmp.path().join("nope");
        let err = load(&missing, 8, 3).unwrap_err().to_string();
        assert!(err.contains(&format!("a folder of PNG/JPEG images at {}", missing.display())), "{err}");
        std::fs::write(tmp.path().join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let err = load(tmp.path(), 8, 3).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot decode the image (", tmp.path().join("broken.png").display())),
            "{err}"
        );
        assert!(err.ends_with("); remove the file or re-save it as PNG or JPEG"), "{err}");
    }

    #[test]
    fn many_files_keep_their_order_across_threads() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..37u8 {
            write_png(&tmp.path().join(format!("img{i:02}.png")), 2, 2, [i, 0, 0]);
        }
        let ds = load(tmp.path(), 2, 3).unwrap();
        let reds: Vec<i64> = (0..37).map(|i| ds.images.int64_value(&[i, 0, 0, 0])).collect();
        assert_eq!(reds, (0..37).collect::<Vec<i64>>());
    }
}
