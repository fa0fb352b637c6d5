//! CIFAR-10, in its binary or its python version.
//!
//! - Binary (`<root>/cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (train) and
//!   `test_batch.bin` (test), each a run of 3073-byte records: 1 label byte, then 3072 pixel bytes
//!   in CHW order (1024 red, 1024 green, 1024 blue, rows top to bottom).
//! - Python (`<root>/cifar-10-batches-py/`): `data_batch_1` … `data_batch_5` and `test_batch`,
//!   each a pickled dict (written by Python 2's cPickle, protocol 2) whose `b"data"` is an
//!   `(N, 3072)` uint8 numpy array (same CHW layout) and `b"labels"` a list of N ints.
//!
//! Record counts come from the files (the real ones hold 10000 each). The binary version is
//! preferred; it is also what [`fetch`](super::fetch()) downloads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_pickle::{DeOptions, HashableValue, Value};

use super::{fetch, DataError, Dataset};

/// The binary version's folder, under the data root.
pub const BIN_DIR: &str = "cifar-10-batches-bin";
/// The python version's folder, under the data root.
pub const PY_DIR: &str = "cifar-10-batches-py";
/// Bytes of one image: 3 x 32 x 32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// CIFAR-10 has 10 classes.
pub const NUM_CLASSES: i64 = 10;
const NAME: &str = "cifar10";

/// The batch files of a split, without the binary version's `.bin`.
pub fn split_batches(split: &str) -> Vec<String> {
    match split {
        "test" => vec!["test_batch".to_string()],
        _ => (1..=5).map(|i| format!("data_batch_{i}")).collect(),
    }
}

fn bin_files(split: &str) -> Vec<String> {
    split_batches(split).into_iter().map(|b| format!("{b}.bin")).collect()
}

fn all_exist(dir: &Path, files: &[String]) -> bool {
    files.iter().all(|f| dir.join(f).is_file())
}

/// Loads a split from `<root>/cifar-10-batches-bin/`, else `<root>/cifar-10-batches-py/`,
/// downloading the binary version first when neither is complete and `download` is on.
pub(crate) fn load(root: &Path, split: &str, download: bool) -> Result<Dataset, DataError> {
    let (bin, py) = (root.join(BIN_DIR), root.join(PY_DIR));
    if all_exist(&bin, &bin_files(split)) {
        return load_bin_dir(&bin, split);
    }
    if all_exist(&py, &split_batches(split)) {
        return load_py_dir(&py, split);
    }
    if download {
        let dir = fetch::fetch(NAME, root)?;
        return load_bin_dir(&dir, split);
    }
    Err(DataError::Missing {
        dataset: NAME.into(),
        expected: format!(
            "{} in {} (or {} in {})",
            bin_files(split).join(", "),
            bin.display(),
            split_batches(split).join(", "),
            py.display()
        ),
        fix: format!("{}; or set data.download = true", fetch::manual_instructions(NAME, root)),
    })
}

fn batch_paths(dir: &Path, files: Vec<String>) -> Result<Vec<PathBuf>, DataError> {
    files
        .into_iter()
        .map(|f| {
            let path = dir.join(&f);
            if path.is_file() {
                Ok(path)
            } else {
                Err(DataError::Missing {
                    dataset: NAME.into(),
                    expected: format!("{f} in {}", dir.display()),
                    fix: format!("put the whole CIFAR-10 batch folder there, or run `lab data fetch {NAME}`"),
                })
            }
        })
        .collect()
}

/// Loads a split from the binary batches in `dir`.
pub fn load_bin_dir(dir: &Path, split: &str) -> Result<Dataset, DataError> {
    let mut batches = Vec::new();
    for path in batch_paths(dir, bin_files(split))? {
        let bytes = std::fs::read(&path).map_err(DataError::io(&path, "read"))?;
        batches.push(parse_bin(&path, &bytes)?);
    }
    Ok(assemble(batches))
}

/// Loads a split from the python pickles in `dir`.
pub fn load_py_dir(dir: &Path, split: &str) -> Result<Dataset, DataError> {
    let mut batches = Vec::new();
    for path in batch_paths(dir, split_batches(split))? {
        let bytes = std::fs::read(&path).map_err(DataError::io(&path, "read"))?;
        batches.push(parse_py(&path, &bytes)?);
    }
    Ok(assemble(batches))
}

/// One batch file's pixels and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// N x 3072 bytes, CHW per image.
    pub pixels: Vec<u8>,
    /// N labels in 0..=9.
    pub labels: Vec<i64>,
}

fn assemble(batches: Vec<Batch>) -> Dataset {
    let n: usize = batches.iter().map(|b| b.labels.len()).sum();
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for b in batches {
        pixels.extend_from_slice(&b.pixels);
        labels.extend_from_slice(&b.labels);
    }
    let images = tch::Tensor::from_slice(&pixels).view([n as i64, 3, 32, 32]);
    Dataset::whole(NAME, images, Some(tch::Tensor::from_slice(&labels)), NUM_CLASSES)
}

fn check_labels(path: &Path, labels: &[i64]) -> Result<(), DataError> {
    match labels.iter().position(|l| !(0..NUM_CLASSES).contains(l)) {
        None => Ok(()),
        Some(pos) => Err(DataError::format(
            path,
            format!(
                "label {} of record {pos} is not a CIFAR-10 class (expected 0..=9); the file is corrupt or from \
                 another dataset (CIFAR-100?): re-download it with `lab data fetch {NAME}`",
                labels[pos]
            ),
        )),
    }
}

/// Parses a binary batch: records of 1 label byte and 3072 pixel bytes.
pub fn parse_bin(path: &Path, bytes: &[u8]) -> Result<Batch, DataError> {
    const RECORD: usize = 1 + IMAGE_BYTES;
    let n = bytes.len() / RECORD;
    if n == 0 || n * RECORD != bytes.len() {
        return Err(DataError::format(
            path,
            format!(
                "is {} bytes long, not a whole number of {RECORD}-byte CIFAR-10 records (1 label byte + 3072 \
                 pixels); the file is truncated or not CIFAR-10 binary: re-download it with `lab data fetch {NAME}`",
                bytes.len()
            ),
        ));
    }
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for record in bytes.chunks_exact(RECORD) {
        labels.push(i64::from(record[0]));
        pixels.extend_from_slice(&record[1..]);
    }
    check_labels(path, &labels)?;
    Ok(Batch { pixels, labels })
}

/// Parses a python batch: a pickled dict with `b"data"` (an `(N, 3072)` uint8 numpy array) and
/// `b"labels"` (a list of N ints).
///
/// serde-pickle cannot build numpy objects, but it keeps what numpy's pickling leaves behind:
/// `numpy.core.multiarray._reconstruct(...)` followed by a BUILD whose state is the tuple
/// `(version, shape, dtype, is_fortran, raw bytes)`. With unresolved globals replaced, that state
/// tuple is exactly what `b"data"` decodes to, and its raw bytes are the pixels.
pub fn parse_py(path: &Path, bytes: &[u8]) -> Result<Batch, DataError> {
    let bad = |message: String| {
        DataError::format(
            path,
            format!("{message}; expected a CIFAR-10 python batch (re-download it with `lab data fetch {NAME}`)"),
        )
    };
    let value = serde_pickle::value_from_slice(bytes, DeOptions::new().replace_unresolved_globals())
        .map_err(|e| bad(format!("is not a readable Python pickle ({e})")))?;
    let Value::Dict(dict) = value else {
        return Err(bad("holds a pickled value that is not a dict".into()));
    };
    let data = dict_get(&dict, "data").ok_or_else(|| bad("has no b\"data\" entry".into()))?;
    let (shape, fortran, raw) =
        ndarray_state(data).ok_or_else(|| bad("has a b\"data\" entry that is not a pickled numpy array".into()))?;
    let n = shape.first().copied().unwrap_or(0);
    let per_image: i64 = shape.iter().skip(1).product();
    if shape.len() < 2 || n < 0 || per_image != IMAGE_BYTES as i64 || (n * per_image) as usize != raw.len() {
        return Err(bad(format!(
            "has b\"data\" of shape {shape:?} with {} bytes of data, not an (N, 3072) uint8 array",
            raw.len()
        )));
    }
    let pixels = if fortran { transpose(raw, n as usize, IMAGE_BYTES) } else { raw.to_vec() };
    let labels = match dict_get(&dict, "labels") {
        Some(Value::List(items) | Value::Tuple(items)) => items
            .iter()
            .map(|v| match v {
                Value::I64(l) => Some(*l),
                _ => None,
            })
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| bad("has b\"labels\" entries that are not integers".into()))?,
        Some(_) => return Err(bad("has a b\"labels\" entry that is not a list".into())),
        None => return Err(bad("has no b\"labels\" entry".into())),
    };
    if labels.len() as i64 != n {
        return Err(bad(format!("has {} labels for {n} images", labels.len())));
    }
    check_labels(path, &labels)?;
    Ok(Batch { pixels, labels })
}

/// A dict entry by name, whether the key was pickled as bytes (Python 2 `str`, or `bytes`) or
/// as a Python 3 `str`.
fn dict_get<'a>(dict: &'a BTreeMap<HashableValue, Value>, key: &str) -> Option<&'a Value> {
    dict.get(&HashableValue::Bytes(key.as_bytes().to_vec()))
        .or_else(|| dict.get(&HashableValue::String(key.to_string())))
}

/// `(shape, is_fortran, raw bytes)` of a numpy array's pickled state tuple
/// `(version, shape, dtype_state, is_fortran, raw)` (older numpy omits `version`).
fn ndarray_state(value: &Value) -> Option<(Vec<i64>, bool, &[u8])> {
    let Value::Tuple(items) = value else { return None };
    let Value::Bytes(raw) = items.last()? else { return None };
    let shape = items.iter().find_map(|item| match item {
        Value::Tuple(dims) | Value::List(dims) => dims
            .iter()
            .map(|d| match d {
                Value::I64(v) => Some(*v),
                _ => None,
            })
            .collect::<Option<Vec<i64>>>(),
        _ => None,
    })?;
    let fortran = items.iter().any(|item| matches!(item, Value::Bool(true)));
    Some((shape, fortran, raw))
}

/// Row-major copy of a column-major `rows` x `cols` matrix.
fn transpose(raw: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let mut out = vec![0u8; raw.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = raw[c * rows + r];
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Image `i`, pixel `k` (CHW offset) of the test batches.
    pub(crate) fn pixel(i: usize, k: usize) -> u8 {
        ((i * 7 + k * 13) % 256) as u8
    }

    /// A binary batch of `labels.len()` records with pixels from [`pixel`], counting images from `first`.
    pub(crate) fn bin_batch(first: usize, labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (j, &l) in labels.iter().enumerate() {
            out.push(l);
            out.extend((0..IMAGE_BYTES).map(|k| pixel(first + j, k)));
        }
        out
    }

    fn check(ds: &Dataset, labels: &[i64]) {
        let n = labels.len();
        assert_eq!(ds.images.size(), [n as i64, 3, 32, 32]);
        assert_eq!(ds.images.kind(), tch::Kind::Uint8);
        assert_eq!(ds.num_classes, 10);
        assert_eq!(Vec::<i64>::try_from(ds.labels.as_ref().unwrap()).unwrap(), labels);
        let pixels = Vec::<u8>::try_from(ds.images.flatten(0, -1)).unwrap();
        let expected: Vec<u8> = (0..n).flat_map(|i| (0..IMAGE_BYTES).map(move |k| pixel(i, k))).collect();
        assert_eq!(pixels, expected);
        // CHW: image 1, channel 2 (blue), row 3, column 4.
        let v = ds.images.int64_value(&[1, 2, 3, 4]);
        assert_eq!(v, i64::from(pixel(1, 2 * 1024 + 3 * 32 + 4)));
    }

    #[test]
    fn binary_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(BIN_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        // Train: five batches of 1, 2, 1, 1, 2 records; test: 3 records.
        let sizes = [1usize, 2, 1, 1, 2];
        let mut first = 0;
        let mut train_labels = Vec::new();
        for (b, &size) in sizes.iter().enumerate() {
            let labels: Vec<u8> = (0..size).map(|j| ((first + j) % 10) as u8).collect();
            std::fs::write(dir.join(format!("data_batch_{}.bin", b + 1)), bin_batch(first, &labels)).unwrap();
            train_labels.extend(labels.iter().map(|&l| i64::from(l)));
            first += size;
        }
        std::fs::write(dir.join("test_batch.bin"), bin_batch(0, &[9, 0, 5])).unwrap();
        check(&load(tmp.path(), "train", false).unwrap(), &train_labels);
        check(&load(tmp.path(), "test", false).unwrap(), &[9, 0, 5]);
    }

    #[test]
    fn binary_errors_name_the_file() {
        let path = Path::new("/d/data_batch_1.bin");
        let err = parse_bin(path, &[0u8; 3074]).unwrap_err().to_string();
        assert_eq!(
            err,
            "/d/data_batch_1.bin: is 3074 bytes long, not a whole number of 3073-byte CIFAR-10 records (1 label \
             byte + 3072 pixels); the file is truncated or not CIFAR-10 binary: re-download it with `lab data fetch cifar10`"
        );
        let err = parse_bin(path, &bin_batch(0, &[3, 12])).unwrap_err().to_string();
        assert!(err.contains("label 12 of record 1 is not a CIFAR-10 class"), "{err}");
        // A missing batch among present ones.
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("data_batch_1.bin"), bin_batch(0, &[1])).unwrap();
        let err = load_bin_dir(tmp.path(), "train").unwrap_err().to_string();
        assert!(err.starts_with("cifar10: not found: expected data_batch_2.bin in"), "{err}");
    }

    #[test]
    fn missing_without_download_names_both_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load(tmp.path(), "test", false).unwrap_err().to_string();
        let expected_start = format!(
            "cifar10: not found: expected test_batch.bin in {} (or test_batch in {}). To get it: ",
            tmp.path().join(BIN_DIR).display(),
            tmp.path().join(PY_DIR).display()
        );
        assert!(err.starts_with(&expected_start), "{err}");
        assert!(err.contains("lab data fetch cifar10"), "{err}");
    }

    /// Writes python batches with the venv's numpy, in three encodings: Python 3 protocol 2 (bytes
    /// as `_codecs.encode`), Python 2 cPickle style (bytes as BINSTRING, as the real CIFAR files),
    /// and protocol 4 (BINBYTES). Returns false when no python with numpy is available.
    fn write_python_batches(dir: &Path, variant: &str) -> bool {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3");
        let script = r#"
import pickle, struct, sys, io
import numpy as np
out, variant = sys.argv[1], sys.argv[2]

def pixel(i, k):
    return (i * 7 + k * 13) % 256

class Py2Pickler(pickle._Pickler):
    # Python 2's cPickle wrote `str` (bytes) with BINSTRING opcodes; emulate it.
    dispatch = pickle._Pickler.dispatch.copy()
    def save_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', n) + obj)
        self.memoize(obj)
    dispatch[bytes] = save_bytes

def batch(first, labels, name):
    n = len(labels)
    data = np.array([[pixel(first + j, k) for k in range(3072)] for j in range(n)], dtype=np.uint8)
    return {b'batch_label': name, b'labels': labels, b'data': data,
            b'filenames': [b'img_%d.png' % (first + j) for j in range(n)]}

def dump(obj, path):
    with open(path, 'wb') as f:
        if variant == 'py2':
            Py2Pickler(f, protocol=2).dump(obj)
        elif variant == 'p4':
            pickle.dump(obj, f, protocol=4)
        else:
            pickle.dump(obj, f, protocol=2)

first = 0
for b, labels in enumerate([[0], [1, 2], [3], [4], [5, 6]]):
    dump(batch(first, labels, b'training batch %d of 5' % (b + 1)), '%s/data_batch_%d' % (out, b + 1))
    first += len(labels)
dump(batch(0, [7, 8, 9], b'testing batch 1 of 1'), out + '/test_batch')
with open(out + '/data_batch_1', 'rb') as f:
    head = f.read(2)
assert head == b'\x80\x02' or variant == 'p4', head
"#;
        match std::process::Command::new(&python).arg("-c").arg(script).arg(dir).arg(variant).output() {
            Ok(out) if out.status.success() => true,
            Ok(out) => panic!("python failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                println!("skipped: cannot run {} ({e})", python.display());
                false
            }
        }
    }

    #[test]
    fn python_round_trip_on_numpy_pickles() {
        for variant in ["p2", "py2", "p4"] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join(PY_DIR);
            std::fs::create_dir_all(&dir).unwrap();
            if !write_python_batches(&dir, variant) {
                return;
            }
            check(&load(tmp.path(), "train", false).unwrap(), &[0, 1, 2, 3, 4, 5, 6]);
            check(&load(tmp.path(), "test", false).unwrap(), &[7, 8, 9]);
        }
    }

    #[test]
    fn python_errors_name_the_file() {
        let path = Path::new("/d/test_batch");
        let err = parse_py(path, b"not a pickle").unwrap_err().to_string();
        assert!(err.starts_with("/d/test_batch: is not a readable Python pickle ("), "{err}");
        assert!(
            err.ends_with("; expected a CIFAR-10 python batch (re-download it with `lab data fetch cifar10`)"),
            "{err}"
        );
        // A pickled dict without data: {b'labels': [1]} at protocol 2.
        let pickle = b"\x80\x02}q\x00U\x06labelsq\x01]q\x02K\x01as.";
        let err = parse_py(path, pickle).unwrap_err().to_string();
        assert_eq!(
            err,
            "/d/test_batch: has no b\"data\" entry; expected a CIFAR-10 python batch (re-download it with `lab data fetch cifar10`)"
        );
    }

    #[test]
    fn fortran_order_arrays_are_transposed() {
        assert_eq!(transpose(&[1, 4, 2, 5, 3, 6], 2, 3), vec![1, 2, 3, 4, 5, 6]);
    }
}
