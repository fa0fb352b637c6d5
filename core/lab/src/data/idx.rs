//! MNIST and Fashion-MNIST in the IDX format, gzipped or not.
//!
//! An IDX file is a big-endian header followed by raw bytes: images have magic number 2051
//! (`0x00000803`: unsigned bytes, 3 dimensions) then the count, rows and columns; labels have
//! magic 2049 (`0x00000801`, 1 dimension) then the count. Files are named
//! `{train,t10k}-{images-idx3,labels-idx1}-ubyte`, optionally with `.gz`; gzip is recognised by
//! its content, not its name.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{fetch, first_existing, DataError, Dataset};

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";
/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// MNIST and Fashion-MNIST both have 10 classes.
pub const NUM_CLASSES: i64 = 10;

/// The (images, labels) file names of a split, without `.gz`.
pub fn split_files(split: &str) -> (&'static str, &'static str) {
    match split {
        "test" => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        _ => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    }
}

/// The folders searched for `dataset`, in order: `<root>/<dataset>/`, then (Fashion-MNIST only)
/// Debian's copy.
pub fn candidate_dirs(dataset: &str, root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join(dataset)];
    if dataset == "fashion-mnist" {
        dirs.push(PathBuf::from(DEBIAN_FASHION_MNIST));
    }
    dirs
}

/// Loads a split of `dataset` (`mnist` or `fashion-mnist`) from the first folder that holds
/// it, downloading it into `<root>/<dataset>/` first when absent and `download` is on.
pub(crate) fn load(dataset: &str, root: &Path, split: &str, download: bool) -> Result<Dataset, DataError> {
    let dir = match candidate_dirs(dataset, root).into_iter().find(|d| split_paths(d, split).is_some()) {
        Some(dir) => dir,
        None if download => fetch::fetch(dataset, root)?,
        None => {
            let (images, labels) = split_files(split);
            let mut expected = format!("{images}[.gz] and {labels}[.gz] in {}", root.join(dataset).display());
            if dataset == "fashion-mnist" {
                expected.push_str(&format!(" (or in {DEBIAN_FASHION_MNIST})"));
            }
            return Err(DataError::Missing {
                dataset: dataset.to_string(),
                expected,
                fix: format!("{}; or set data.download = true", fetch::manual_instructions(dataset, root)),
            });
        }
    };
    load_dir(dataset, &dir, split)
}

/// The (images, labels) paths of `split` in `dir`, if both exist (plain or `.gz`).
fn split_paths(dir: &Path, split: &str) -> Option<(PathBuf, PathBuf)> {
    let (images, labels) = split_files(split);
    let find = |stem: &str| first_existing(dir, &[stem.to_string(), format!("{stem}.gz")]);
    Some((find(images)?, find(labels)?))
}

/// Loads a split from the IDX files in `dir` (named after `dataset` in messages).
pub fn load_dir(dataset: &str, dir: &Path, split: &str) -> Result<Dataset, DataError> {
    let (images_path, labels_path) = split_paths(dir, split).ok_or_else(|| {
        let (images, labels) = split_files(split);
        DataError::Missing {
            dataset: dataset.to_string(),
            expected: format!("{images}[.gz] and {labels}[.gz] in {}", dir.display()),
            fix: format!("put the IDX files there, or run `lab data fetch {dataset}`"),
        }
    })?;
    tracing::debug!(images = %images_path.display(), labels = %labels_path.display(), "reading IDX files");
    let image_bytes = read_maybe_gzipped(&images_path)?;
    let (n, rows, cols, pixels) = parse_images(&images_path, &image_bytes, dataset)?;
    let label_bytes = read_maybe_gzipped(&labels_path)?;
    let labels = parse_labels(&labels_path, &label_bytes, dataset)?;
    if labels.len() as i64 != n {
        return Err(DataError::format(
            &labels_path,
            format!(
                "holds {} labels but {} holds {n} images; the two files must come from the same split \
                 of {dataset} (re-download them with `lab data fetch {dataset}`)",
                labels.len(),
                images_path.display()
            ),
        ));
    }
    if let Some(pos) = labels.iter().position(|&l| i64::from(l) >= NUM_CLASSES) {
        return Err(DataError::format(
            &labels_path,
            format!(
                "label {} at index {pos} is not a class of {dataset} (expected 0..={}); the file is corrupt, \
                 re-download it with `lab data fetch {dataset}`",
                labels[pos],
                NUM_CLASSES - 1
            ),
        ));
    }
    let images = tch::Tensor::from_slice(pixels).view([n, 1, rows, cols]);
    let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    Ok(Dataset::whole(dataset, images, Some(tch::Tensor::from_slice(&labels)), NUM_CLASSES))
}

/// The file's bytes, gunzipped when they start with the gzip magic bytes.
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(DataError::io(path, "read"))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(|e| {
        DataError::format(
            path,
            format!(
                "is not a valid gzip file ({e}); the download is truncated or corrupt: delete it and fetch it again"
            ),
        )
    })?;
    Ok(out)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn check_magic(
    path: &Path,
    bytes: &[u8],
    header: usize,
    magic: u32,
    what: &str,
    dataset: &str,
) -> Result<(), DataError> {
    if bytes.len() < header {
        return Err(DataError::format(
            path,
            format!(
                "is {} bytes long, too short for an IDX {what} header ({header} bytes); the file is truncated: \
                 re-download it with `lab data fetch {dataset}`",
                bytes.len()
            ),
        ));
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::format(
            path,
            format!(
                "is not an IDX {what} file: expected magic number {magic} (0x{magic:08x}), found {found} \
                 (0x{found:08x}); check the file name (images and labels swapped?) or re-download it with \
                 `lab data fetch {dataset}`"
            ),
        ));
    }
    Ok(())
}

/// Parses an IDX image file: `(count, rows, columns, pixels)`.
pub fn parse_images<'a>(path: &Path, bytes: &'a [u8], dataset: &str) -> Result<(i64, i64, i64, &'a [u8]), DataError> {
    check_magic(path, bytes, 16, IMAGES_MAGIC, "images", dataset)?;
    let (n, rows, cols) = (be_u32(bytes, 4) as usize, be_u32(bytes, 8) as usize, be_u32(bytes, 12) as usize);
    let expected = n.checked_mul(rows).and_then(|v| v.checked_mul(cols));
    let pixels = &bytes[16..];
    if expected != Some(pixels.len()) {
        return Err(DataError::format(
            path,
            format!(
                "header promises {n} images of {rows}x{cols} = {} bytes after the 16-byte header, found {} bytes; \
                 the file is truncated or corrupt: re-download it with `lab data fetch {dataset}`",
                expected.map_or_else(|| "too many".to_string(), |e| e.to_string()),
                pixels.len()
            ),
        ));
    }
    Ok((n as i64, rows as i64, cols as i64, pixels))
}

/// Parses an IDX label file: one byte per label.
pub fn parse_labels<'a>(path: &Path, bytes: &'a [u8], dataset: &str) -> Result<&'a [u8], DataError> {
    check_magic(path, bytes, 8, LABELS_MAGIC, "labels", dataset)?;
    let n = be_u32(bytes, 4) as usize;
    let labels = &bytes[8..];
    if labels.len() != n {
        return Err(DataError::format(
            path,
            format!(
                "header promises {n} labels (bytes after the 8-byte header), found {} bytes; the file is \
                 truncated or corrupt: re-download it with `lab data fetch {dataset}`",
                labels.len()
            ),
        ));
    }
    Ok(labels)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// An IDX image file of `n` images of `rows` x `cols`, pixel `k` of the file being `k % 251`.
    pub(crate) fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [IMAGES_MAGIC, n, rows, cols] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend((0..n * rows * cols).map(|k| (k % 251) as u8));
        out
    }

    pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        out.extend_from_slice(labels);
        out
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn real_fashion_mnist_from_debian() {
        let dir = Path::new(DEBIAN_FASHION_MNIST);
        if split_paths(dir, "train").is_none() {
            println!("skipped: Fashion-MNIST is not in {DEBIAN_FASHION_MNIST} (apt install dataset-fashion-mnist)");
            return;
        }
        let ds = load_dir("fashion-mnist", dir, "train").unwrap();
        assert_eq!(ds.images.size(), [60000, 1, 28, 28]);
        assert_eq!(ds.images.kind(), tch::Kind::Uint8);
        assert_eq!(ds.num_classes, 10);
        let labels = ds.labels.as_ref().unwrap();
        assert_eq!(labels.kind(), tch::Kind::Int64);
        let counts = Vec::<i64>::try_from(labels.bincount::<tch::Tensor>(None, 10)).unwrap();
        assert_eq!(counts, vec![6000; 10]);
        assert_eq!(ds.indices.len(), 60000);
        // Real images use the whole range, and are not blank.
        assert_eq!(ds.images.max().int64_value(&[]), 255);
        let test = load_dir("fashion-mnist", dir, "test").unwrap();
        assert_eq!(test.images.size(), [10000, 1, 28, 28]);
        let counts = Vec::<i64>::try_from(test.labels.as_ref().unwrap().bincount::<tch::Tensor>(None, 10)).unwrap();
        assert_eq!(counts, vec![1000; 10]);
    }

    #[test]
    fn gzipped_and_plain_files_load_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let (plain, gz) = (tmp.path().join("plain"), tmp.path().join("gz"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&gz).unwrap();
        let images = idx_images(5, 4, 3);
        let labels = idx_labels(&[3, 1, 4, 1, 5]);
        std::fs::write(plain.join("t10k-images-idx3-ubyte"), &images).unwrap();
        std::fs::write(plain.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
        std::fs::write(gz.join("t10k-images-idx3-ubyte.gz"), gzip(&images)).unwrap();
        std::fs::write(gz.join("t10k-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
        for dir in [&plain, &gz] {
            let ds = load_dir("mnist", dir, "test").unwrap();
            assert_eq!(ds.images.size(), [5, 1, 4, 3]);
            let pixels = Vec::<u8>::try_from(ds.images.flatten(0, -1)).unwrap();
            assert_eq!(pixels, (0..60u32).map(|k| (k % 251) as u8).collect::<Vec<_>>());
            assert_eq!(Vec::<i64>::try_from(ds.labels.as_ref().unwrap()).unwrap(), vec![3, 1, 4, 1, 5]);
        }
        // The train split is not there: a clear error naming the folder and the files.
        let err = load_dir("mnist", &plain, "train").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "mnist: not found: expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] in {}. \
                 To get it: put the IDX files there, or run `lab data fetch mnist`",
                plain.display()
            )
        );
    }

    #[test]
    fn load_without_download_says_where_to_put_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load("mnist", tmp.path(), "train", false).unwrap_err().to_string();
        let dir = tmp.path().join("mnist");
        assert!(
            err.starts_with(&format!(
                "mnist: not found: expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] in {}. To get it: ",
                dir.display()
            )),
            "{err}"
        );
        assert!(err.contains("lab data fetch mnist"), "{err}");
        assert!(err.ends_with("; or set data.download = true"), "{err}");
    }

    #[test]
    fn corrupt_magic_is_an_exact_error() {
        let tmp = tempfile::tempdir().unwrap();
        // An image file whose magic number says "labels".
        let mut images = idx_images(2, 2, 2);
        images[..4].copy_from_slice(&LABELS_MAGIC.to_be_bytes());
        std::fs::write(tmp.path().join("train-images-idx3-ubyte"), images).unwrap();
        std::fs::write(tmp.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
        let err = load_dir("fashion-mnist", tmp.path(), "train").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: is not an IDX images file: expected magic number 2051 (0x00000803), found 2049 (0x00000801); \
                 check the file name (images and labels swapped?) or re-download it with `lab data fetch fashion-mnist`",
                tmp.path().join("train-images-idx3-ubyte").display()
            )
        );
    }

    #[test]
    fn truncated_and_mismatched_files_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x");
        let mut images = idx_images(2, 2, 2);
        images.pop();
        let err = parse_images(&path, &images, "mnist").unwrap_err().to_string();
        assert!(
            err.contains("header promises 2 images of 2x2 = 8 bytes after the 16-byte header, found 7 bytes"),
            "{err}"
        );
        let err = parse_images(&path, &[0, 0, 8], "mnist").unwrap_err().to_string();
        assert!(err.contains("is 3 bytes long, too short for an IDX images header (16 bytes)"), "{err}");
        let err = parse_labels(&path, &idx_labels(&[1, 2])[..9], "mnist").unwrap_err().to_string();
        assert!(err.contains("header promises 2 labels"), "{err}");
        // Label count differs from image count.
        std::fs::write(tmp.path().join("train-images-idx3-ubyte"), idx_images(3, 2, 2)).unwrap();
        std::fs::write(tmp.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
        let err = load_dir("mnist", tmp.path(), "train").unwrap_err().to_string();
        assert!(err.contains("holds 2 labels but"), "{err}");
        // A label out of range.
        std::fs::write(tmp.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2, 10])).unwrap();
        let err = load_dir("mnist", tmp.path(), "train").unwrap_err().to_string();
        assert!(err.contains("label 10 at index 2 is not a class of mnist (expected 0..=9)"), "{err}");
        // A gzip file cut short.
        let gz = gzip(&idx_images(3, 2, 2));
        std::fs::write(tmp.path().join("train-images-idx3-ubyte"), &gz[..gz.len() / 2]).unwrap();
        let err = load_dir("mnist", tmp.path(), "train").unwrap_err().to_string();
        assert!(err.contains("is not a valid gzip file"), "{err}");
    }
}
