//! `image-folder`: every PNG and JPEG file under a folder, resized to a square.
//!
//! Files are found recursively (hidden files and folders skipped), sorted by path so the order,
//! and therefore subsets, are deterministic. Each image is converted to `channels` (grey or RGB;
//! alpha is dropped) and resized to `image_size` × `image_size` with a triangle (bilinear)
//! filter, ignoring its aspect ratio. When every file sits inside a subfolder, the top-level
//! subfolder names (sorted) become class ids 0, 1, …; if any file sits directly in the folder,
//! the dataset is unlabelled.
//!
//! Two-domain sets for image-to-image translation: `paired-folder` reads pix2pix's layout (each
//! file holds A and B side by side, A on the left) and `unpaired-folders` two folders, one per
//! domain (CycleGAN's trainA/trainB).

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::{DataError, Dataset, DomainB};

const NAME: &str = "image-folder";
const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Loads every image under `dir` as `channels` x `size` x `size`.
pub fn load(dir: &Path, size: i64, channels: i64) -> Result<Dataset, DataError> {
    let (files, labels, num_classes) = list(dir)?;
    let paths: Vec<PathBuf> = files.iter().map(|rel| dir.join(rel)).collect();
    let pixels = decode_all(&paths, size as u32, channels as u8, Part::Whole)?;
    let images = tch::Tensor::from_slice(&pixels).view([files.len() as i64, channels, size, size]);
    Ok(Dataset::whole(NAME, images, labels.map(|l| tch::Tensor::from_slice(&l)), num_classes))
}

/// pix2pix's aligned layout: each image under `dir` holds A | B side by side. Both halves are
/// resized to `size` × `size`; A becomes the images, B the aligned second domain.
pub fn load_paired(dir: &Path, size: i64, channels: i64) -> Result<Dataset, DataError> {
    let (files, labels, num_classes) = list(dir)?;
    let paths: Vec<PathBuf> = files.iter().map(|rel| dir.join(rel)).collect();
    // Each half is cut out first and resized on its own, so nothing blends across the seam.
    let shape = [files.len() as i64, channels, size, size];
    let a = tch::Tensor::from_slice(&decode_all(&paths, size as u32, channels as u8, Part::Left)?).view(shape);
    let b = tch::Tensor::from_slice(&decode_all(&paths, size as u32, channels as u8, Part::Right)?).view(shape);
    let mut ds = Dataset::whole("paired-folder", a, labels.map(|l| tch::Tensor::from_slice(&l)), num_classes);
    ds.domain_b = Some(DomainB { images: b, paired: true });
    Ok(ds)
}

/// CycleGAN's unpaired layout: domain A's images under `dir_a`, domain B's under `dir_b`, in any
/// numbers; both resized to `size` × `size`.
pub fn load_unpaired(dir_a: &Path, dir_b: &Path, size: i64, channels: i64) -> Result<Dataset, DataError> {
    let a = load(dir_a, size, channels)?;
    let b = load(dir_b, size, channels)?;
    let mut ds = Dataset::whole("unpaired-folders", a.images, a.labels, a.num_classes);
    ds.domain_b = Some(DomainB { images: b.images, paired: false });
    Ok(ds)
}

/// The image files under `dir` (sorted, relative) and their class labels, if every file is in a
/// class subfolder.
#[allow(clippy::type_complexity)]
fn list(dir: &Path) -> Result<(Vec<PathBuf>, Option<Vec<i64>>, i64), DataError> {
    if !dir.is_dir() {
        return Err(DataError::Missing {
            dataset: NAME.into(),
            expected: format!("a folder of PNG/JPEG images at {}", dir.display()),
            fix: "set data.path to an existing folder".into(),
        });
    }
    let mut files = Vec::new();
    collect(dir, dir, &mut files, 0)?;
    files.sort();
    if files.is_empty() {
        return Err(DataError::Missing {
            dataset: NAME.into(),
            expected: format!("PNG or JPEG files (.png, .jpg, .jpeg) under {}", dir.display()),
            fix: "put images there (subfolders become classes), or point data.path at the folder that has them".into(),
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
