//! Datasets: read once from disk into a uint8 NCHW tensor on the CPU (the trainer moves it to
//! the run device once), optionally cut down to a seeded subset.
//!
//! Sources, selected by `[data] dataset`:
//!
//! | name            | format                            | where (under [`DataConfig::resolved_root`])                  |
//! |-----------------|-----------------------------------|--------------------------------------------------------------|
//! | `fashion-mnist` | IDX, gzipped or not ([`idx`])     | `fashion-mnist/`, then Debian's `/usr/share/datasets/fashion-mnist/` |
//! | `mnist`         | IDX, gzipped or not               | `mnist/`                                                     |
//! | `cifar10`       | binary or python pickles ([`cifar`]) | `cifar-10-batches-bin/`, then `cifar-10-batches-py/`     |
//! | `image-folder`  | PNG/JPEG files ([`folder`])       | `data.path`                                                  |
//! | `paired-folder` | A\|B PNG/JPEG files, or two folders paired by name ([`folder`]) | `data.path` (`data.path_b`) |
//! | `unpaired-folders` | two folders of PNG/JPEG files ([`folder`]) | `data.path`, `data.path_b`, or `data.path`'s `trainA/`… |
//! | `edges2fashion`, `fashion2inverted` | stand-ins built from Fashion-MNIST ([`standin`]) | `edges2fashion/`, `fashion2inverted/` |
//! | `shapes`        | drawn procedurally ([`synthetic`]) | nothing on disk                                             |
//!
//! Missing canonical datasets are downloaded when `data.download` is true ([`fetch()`]), and the
//! subset rule behind `data.fraction` is documented in [`subset`].
mod checksum;
pub mod cifar;
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod standin;

pub mod subset;
pub mod synthetic;
pub mod toy;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use fetch::fetch;

/// The dataset names `[data] dataset` accepts.
pub const DATASETS: &[&str] = &[
    "fashion-mnist",
    "mnist",
    "cifar10",
    "image-folder",
    "paired-folder",
    "unpaired-folders",
    "edges2fashion",
    "fashion2inverted",
    "shapes",
    "ring",
    "grid",
];
/// The splits `[data] split` accepts.
pub const SPLITS: &[&str] = &["train", "test"];

/// The `[data]` section of an experiment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `fashion-mnist` (default), `mnist`, `cifar10`, `image-folder`, `shapes`, or the 2-D toy
    /// mixtures `ring` and `grid` ([`toy`]).
    pub dataset: String,
    /// Where datasets live; `None` means `$LAB_DATA`, else `~/.cache/lab/datasets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// `train` (default) or `test`.
    pub split: String,
    /// The share of the split to keep, in (0, 1]; see [`subset`] for the rule.
    pub fraction: f64,
    /// The number of images of the split to keep instead of a share (0: use `fraction`); the
    /// low-shot way to say "100 images". Chosen by the same rule as `fraction`.
    pub count: u64,
    /// `random` (default; a seeded random choice, as DiffAugment's BigGAN code) or `first`
    /// (the first N, as DiffAugment's StyleGAN2 code).
    pub subset: String,
    /// Seeds the `random` subset and the `shapes` drawing.
    pub subset_seed: u64,
    /// Horizontal flips of the reals, applied by the trainer (carried here, not applied).
    pub hflip: bool,
    /// `image-folder`: the folder of PNG/JPEG files; `paired-folder`: the folder of A|B images
    /// (A on the left); `unpaired-folders`: domain A's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `unpaired-folders`: domain B's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_b: Option<PathBuf>,
    /// `image-folder` and the two-domain sets: the square side the networks see; `shapes`: the
    /// image side.
    pub image_size: i64,
    /// Image folders and the two-domain sets: the side images are resized to on loading, before
    /// a random `image_size` crop of every training image (pix2pix and CycleGAN load 286 and
    /// crop 256; the crop is the same for both images of a pair). 0: `image_size`, no crop.
    pub load_size: i64,
    /// Two-domain sets: `AtoB` (default) translates the first domain (the left half, `data.path`,
    /// `trainA/`) into the second; `BtoA` swaps them (the official `--direction`: facades
    /// ships photos on the left, and labels → photo is BtoA).
    pub direction: String,
    /// `shapes`: the number of images; `ring`, `grid`: the number of points.
    pub synthetic_count: i64,
    /// `ring`: the number of modes; `grid`: the number of modes, a square (25 = 5 × 5).
    pub toy_modes: i64,
    /// `ring`: the circle's radius; `grid`: the spacing between modes.
    pub toy_radius: f64,
    /// `ring`, `grid`: each mode's standard deviation.
    pub toy_std: f64,
    /// `ring`: place `toy_modes` components at numpy's `linspace(0, 2π, toy_modes)` with its
    /// endpoint, as LSGAN's code does: the first and last coincide, so `toy_modes − 1` modes,
    /// the first drawn twice as often.
    pub toy_endpoint: bool,
    /// `image-folder` and `shapes`: 1 (grey) or 3 (RGB).
    pub channels: i64,
    /// Download canonical archives when they are missing (and the network is there).
    pub download: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: "fashion-mnist".into(),
            root: None,
            split: "train".into(),
            fraction: 1.0,
            count: 0,
            subset: "random".into(),
            subset_seed: 0,
            hflip: false,
            path: None,
            path_b: None,
            image_size: 32,
            load_size: 0,
            direction: "AtoB".into(),
            synthetic_count: 2048,
            toy_modes: 8,
            toy_radius: 1.0,
            toy_std: 0.01,
            toy_endpoint: false,
            channels: 3,
            download: true,
        }
    }
}

impl DataConfig {
    /// The side images are stored at: `load_size` when set, else `image_size`.
    pub fn stored_size(&self) -> i64 {
        if self.load_size > 0 {
            self.load_size
        } else {
            self.image_size
        }
    }

    /// The mixture of a 2-D toy dataset (`ring`, `grid`); `None` for image datasets.
    pub fn mixture(&self) -> Option<toy::Mixture> {
        match self.dataset.as_str() {
            "ring" if self.toy_endpoint => {
                Some(toy::Mixture::ring_with_endpoint(self.toy_modes.max(2) as usize, self.toy_radius, self.toy_std))
            }
            "ring" => Some(toy::Mixture::ring(self.toy_modes.max(1) as usize, self.toy_radius, self.toy_std)),
            "grid" => {
                let side = (self.toy_modes as f64).sqrt().round().max(1.0) as usize;
                Some(toy::Mixture::grid(side, self.toy_radius, self.toy_std))
            }
            _ => None,
        }
    }

    /// Checks every key and the rules between them; the error names the key and the fix.
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |key: &'static str, expected: &str, found: String| DataError::Invalid {
            key,
            expected: expected.to_string(),
            found,
        };
        if !DATASETS.contains(&self.dataset.as_str()) {
            return Err(DataError::UnknownDataset {
                found: self.dataset.clone(),
                suggestion: did_you_mean(&self.dataset, DATASETS),
            });
        }
        if !SPLITS.contains(&self.split.as_str()) {
            return Err(invalid("split", "`train` or `test`", format!("{:?}", self.split)));
        }
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(invalid(
                "fraction",
                "a share of the split in (0, 1], e.g. 0.1 for 10%",
                self.fraction.to_string(),
            ));
        }
        if self.count > 0 && self.fraction != 1.0 {
            return Err(invalid(
                "count",
                "either `count` (a number of images) or `fraction` (a share), not both; remove one",
                format!("{} with fraction = {}", self.count, self.fraction),
            ));
        }
        if !subset::RULES.contains(&self.subset.as_str()) {
            return Err(invalid(
                "subset",
                "`random` (seeded random choice) or `first` (the first N)",
                format!("{:?}", self.subset),
            ));
        }
        let resizable = matches!(
            self.dataset.as_str(),
            "image-folder" | "paired-folder" | "unpaired-folders" | "edges2fashion" | "fashion2inverted"
        );
        if self.direction != "AtoB" && self.direction != "BtoA" {
            return Err(invalid(
                "direction",
                "\"AtoB\" (the first domain into the second) or \"BtoA\" (the other way)",
                format!("{:?}", self.direction),
            ));
        }
        let two_domains = matches!(
            self.dataset.as_str(),
            "paired-folder" | "unpaired-folders" | "edges2fashion" | "fashion2inverted"
        );
        if self.direction == "BtoA" && !two_domains {
            return Err(invalid(
                "direction",
                "\"AtoB\" for a dataset of one domain (\"BtoA\" swaps the domains of a two-domain set)",
                format!("{:?}", self.direction),
            ));
        }
        if self.load_size != 0 && !resizable {
            return Err(invalid(
                "load_size",
                "0 for this dataset: resizing and cropping on load applies to image folders and the two-domain sets",
                self.load_size.to_string(),
            ));
        }
        match self.dataset.as_str() {
            "image-folder" | "paired-folder" | "unpaired-folders" => {
                let what = match self.dataset.as_str() {
                    "image-folder" => "the folder of PNG/JPEG images for dataset = \"image-folder\" (e.g. path = \"/data/faces\")",
                    "paired-folder" => "the pix2pix set's folder (train/ and test/ of A|B images, A on the left), a folder of A|B images, or domain A's folder with path_b for dataset = \"paired-folder\" (e.g. path = \"/data/facades\")",
                    _ => "the CycleGAN set's folder (trainA/, trainB/, testA/, testB/), or domain A's folder with path_b, for dataset = \"unpaired-folders\" (e.g. path = \"/data/horse2zebra\")",
                };
                if self.path.is_none() {
                    return Err(invalid("path", what, "nothing".into()));
                }
                if let (Some(path_b), "image-folder") = (&self.path_b, self.dataset.as_str()) {
                    return Err(invalid(
                        "path_b",
                        "nothing for dataset = \"image-folder\" (path_b is the second domain of \"paired-folder\" or \"unpaired-folders\")",
                        format!("{:?}", path_b.display().to_string()),
                    ));
                }
                if self.dataset == "image-folder" && self.split != "train" {
                    return Err(invalid(
                        "split",
                        "`train` for an image folder, which has no splits (point `path` at the other folder instead)",
                        format!("{:?}", self.split),
                    ));
                }
                self.validate_image_keys()?;
            }
            "edges2fashion" | "fashion2inverted" => self.validate_image_keys()?,
            "ring" | "grid" => {
                if self.synthetic_count < 1 {
                    return Err(invalid("synthetic_count", "at least 1 point", self.synthetic_count.to_string()));
                }
                let side = (self.toy_modes as f64).sqrt().round() as i64;
                if self.toy_modes < 1 || (self.dataset == "grid" && side * side != self.toy_modes) {
                    let what = if self.dataset == "grid" {
                        "a square number of modes (9, 25, ...)"
                    } else {
                        "at least 1 mode"
                    };
                    return Err(invalid("toy_modes", what, self.toy_modes.to_string()));
                }
                if self.toy_endpoint && (self.dataset == "grid" || self.toy_modes < 3) {
                    let what = "`false`, or `true` on a `ring` of at least 3 components (2 modes)";
                    return Err(invalid(
                        "toy_endpoint",
                        what,
                        format!("true with {} `{}`", self.toy_modes, self.dataset),
                    ));
                }
                if !(self.toy_std > 0.0 && self.toy_std.is_finite()) {
                    return Err(invalid("toy_std", "a positive standard deviation", self.toy_std.to_string()));
                }
                if !(self.toy_radius > 0.0 && self.toy_radius.is_finite()) {
                    return Err(invalid(
                        "toy_radius",
                        "a positive radius (ring) or spacing (grid)",
                        self.toy_radius.to_string(),
                    ));
                }
            }
            "shapes" => {
                self.validate_image_keys()?;
                if self.synthetic_count < 1 {
                    return Err(invalid("synthetic_count", "at least 1 image", self.synthetic_count.to_string()));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_image_keys(&self) -> Result<(), DataError> {
        if !(1..=4096).contains(&self.image_size) {
            return Err(DataError::Invalid {
                key: "image_size",
                expected: "an image side between 1 and 4096 pixels".into(),
                found: self.image_size.to_string(),
            });
        }
        if self.load_size != 0 && !(self.image_size..=4096).contains(&self.load_size) {
            return Err(DataError::Invalid {
                key: "load_size",
                expected: format!(
                    "0 (no crop) or a side between image_size ({}) and 4096 pixels that images are resized to before an image_size crop",
                    self.image_size
                ),
                found: self.load_size.to_string(),
            });
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(DataError::Invalid {
                key: "channels",
                expected: "1 (grey) or 3 (RGB)".into(),
                found: self.channels.to_string(),
            });
        }
        Ok(())
    }

    /// The folder datasets live in: `root` if set, else `$LAB_DATA`, else
    /// `~/.cache/lab/datasets`.
    pub fn resolved_root(&self) -> PathBuf {
        if let Some(root) = &self.root {
            return root.clone();
        }
        default_root()
    }
}

/// `$LAB_DATA` if set and non-empty, else `~/.cache/lab/datasets` (relative to the working
/// directory when there is no `$HOME`).
pub fn default_root() -> PathBuf {
    match std::env::var_os("LAB_DATA") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache").join("lab").join("datasets")
        }
    }
}

/// The second domain of a two-domain dataset (image-to-image translation).
pub struct DomainB {
    /// uint8, NCHW, on the CPU.
    pub images: tch::Tensor,
    /// Paired: `images[i]` is the translation of the first domain's `images[i]` (pix2pix), so
    /// subsets, batches and flips select both alike. Unpaired: any number of images, drawn on
    /// their own (CycleGAN).
    pub paired: bool,
}

/// A loaded dataset.
pub struct Dataset {
    /// The dataset's name (`fashion-mnist`, ...).
    pub name: String,
    /// uint8, NCHW, on the CPU.
    pub images: tch::Tensor,
    /// int64 `(N,)`, `None` when the source has no labels.
    pub labels: Option<tch::Tensor>,
    /// 0 when unlabelled.
    pub num_classes: i64,
    /// The source indices kept by the subset, ascending (recorded in the run folder).
    pub indices: Vec<i64>,
    /// The second domain, for two-domain datasets.
    pub domain_b: Option<DomainB>,
    /// The side of the random crop every training image gets (`data.load_size` >
    /// `data.image_size`); `None`: images are used whole.
    pub crop: Option<i64>,
}

impl Dataset {
    /// The number of images.
    pub fn len(&self) -> i64 {
        self.images.size()[0]
    }

    /// Whether there are no images (never true for a dataset returned by [`load`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A dataset of all `images` (N first), recording indices `0..N`.
    pub(crate) fn whole(name: &str, images: tch::Tensor, labels: Option<tch::Tensor>, num_classes: i64) -> Self {
        let n = images.size()[0];
        Self {
            name: name.to_string(),
            images,
            labels,
            num_classes,
            indices: (0..n).collect(),
            domain_b: None,
            crop: None,
        }
    }

    /// The dataset as evaluation and pictures see it: with a crop, each image's (and its second
    /// domain's) central window, as views; unchanged otherwise.
    pub fn centred(mut self) -> Self {
        if let Some(side) = self.crop.take() {
            self.images = center_crop(&self.images, side);
            if let Some(b) = self.domain_b.as_mut() {
                b.images = center_crop(&b.images, side);
            }
        }
        self
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("images", &(self.images.size(), self.images.kind()))
            .field("labels", &self.labels.as_ref().map(|l| l.size()))
            .field("num_classes", &self.num_classes)
            .field("indices", &format_args!("[{} indices]", self.indices.len()))
            .finish()
    }
}

/// Everything that can go wrong reading a dataset. Every message names the file or folder, what
/// was expected, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A `[data]` key holds a value it does not accept.
    #[error("[data] {key} = {found}: expected {expected}")]
    Invalid { key: &'static str, expected: String, found: String },

    /// `[data] dataset` names no known dataset.
    #[error(
        "[data] dataset = {found:?} is not a dataset lab knows: expected one of {}{}",
        DATASETS.join(", "),
        suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
    )]
    UnknownDataset { found: String, suggestion: Option<String> },

    /// A dataset's files are not on disk, and downloading is off.
    #[error("{dataset}: not found: expected {expected}. To get it: {fix}")]
    Missing { dataset: String, expected: String, fix: String },

    /// A download failed (no network, server error); the message says how to get the files by hand.
    #[error("{dataset}: cannot download {url}: {reason}. To get it by hand: {fix}")]
    Download { dataset: String, url: String, reason: String, fix: String },

    /// A downloaded file does not have its published checksum.
    #[error(
        "{}: {algorithm} checksum mismatch: expected {expected}, found {actual}; the download is corrupt \
         or the server changed the file (it was deleted); run `lab data fetch {dataset}` again",
        path.display()
    )]
    Checksum { dataset: String, path: PathBuf, algorithm: &'static str, expected: String, actual: String },

    /// A file exists but does not hold what its format promises.
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },

    /// Reading or writing a file or folder failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// An image file could not be decoded.
    #[error("{}: cannot decode the image ({source}); remove the file or re-save it as PNG or JPEG", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    /// `lab data fetch` was asked for a dataset that has nothing to download.
    #[error("{dataset}: nothing to fetch: {reason}")]
    NotFetchable { dataset: String, reason: String },
}

impl DataError {
    /// An I/O error on `path` while trying to `action` it.
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str) -> impl FnOnce(std::io::Error) -> DataError {
        let path = path.into();
        move |source| DataError::Io { path, action, source }
    }

    /// A format error on `path`.
    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> DataError {
        DataError::Format { path: path.into(), message: message.into() }
    }
}

/// The closest valid name to `found`, if one is close enough to be a likely typo.
pub(crate) fn did_you_mean(found: &str, valid: &[&str]) -> Option<String> {
    let found = found.to_ascii_lowercase();
    valid
        .iter()
        .map(|v| (strsim::normalized_damerau_levenshtein(&found, v), *v))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v.to_string())
}

/// Loads the dataset `cfg` describes (downloading it first when missing and allowed), then keeps
/// the subset `fraction`/`subset`/`subset_seed` select.
pub fn load(cfg: &DataConfig) -> Result<Dataset, DataError> {
    cfg.validate()?;
    let root = cfg.resolved_root();
    let full = match cfg.dataset.as_str() {
        "fashion-mnist" | "mnist" => idx::load(&cfg.dataset, &root, &cfg.split, cfg.download)?,
        "cifar10" => cifar::load(&root, &cfg.split, cfg.download)?,
        "image-folder" => {
            let path = cfg.path.as_deref().expect("validate() requires a path for image-folder");
            folder::load(path, cfg.stored_size(), cfg.channels)?
        }
        "paired-folder" | "unpaired-folders" | "edges2fashion" | "fashion2inverted" => load_two_domains(cfg, &root)?,
        "shapes" => synthetic::shapes(&cfg.split, cfg.synthetic_count, cfg.image_size, cfg.channels, cfg.subset_seed),
        "ring" | "grid" => {
            let mixture = cfg.mixture().expect("a toy dataset has a mixture");
            toy::load(&cfg.dataset, &mixture, &cfg.split, cfg.synthetic_count, cfg.subset_seed)
        }
        other => unreachable!("validate() accepted unknown dataset {other}"),
    };
    let total = full.len();
    let kept = match cfg.count {
        0 => subset::subset_size(total as usize, cfg.fraction),
        n if n > total as u64 => {
            return Err(DataError::Invalid {
                key: "count",
                expected: format!("at most the {total} images of the {} split of {}", cfg.split, cfg.dataset),
                found: n.to_string(),
            })
        }
        n => n as usize,
    };
    let indices = subset::choose_count(total as usize, kept, &cfg.subset, cfg.subset_seed);
    let mut ds = subset::apply(full, indices);
    if cfg.stored_size() > cfg.image_size {
        ds.crop = Some(cfg.image_size);
    }
    tracing::info!(
        dataset = %ds.name,
        split = %cfg.split,
        images = ds.len(),
        of = total,
        shape = ?ds.images.size(),
        classes = ds.num_classes,
        "dataset loaded"
    );
    Ok(ds)
}

/// A two-domain set's split: which folders hold it (see [`folder::split_folder`]), read by the
/// real loaders; the stand-ins are built on first use.
fn load_two_domains(cfg: &DataConfig, root: &Path) -> Result<Dataset, DataError> {
    let (size, channels, split) = (cfg.stored_size(), cfg.channels, cfg.split.as_str());
    let (base, base_b) = match cfg.dataset.as_str() {
        "edges2fashion" | "fashion2inverted" => (standin::ensure(&cfg.dataset, root, cfg.download)?, None),
        _ => (cfg.path.clone().expect("validated"), cfg.path_b.clone()),
    };
    let paired = matches!(cfg.dataset.as_str(), "paired-folder" | "edges2fashion");
    let mut ds = match (paired, base_b) {
        (true, None) => folder::load_paired(&folder::split_folder(&base, split, "", "data.path")?, size, channels)?,
        (true, Some(b)) => folder::load_paired_folders(
            &folder::split_folder(&base, split, "", "data.path")?,
            &folder::split_folder(&b, split, "", "data.path_b")?,
            size,
            channels,
        )?,
        (false, Some(b)) => folder::load_unpaired(
            &folder::split_folder(&base, split, "", "data.path")?,
            &folder::split_folder(&b, split, "", "data.path_b")?,
            size,
            channels,
        )?,
        (false, None) => folder::load_unpaired(
            &folder::split_folder(&base, split, "A", "data.path")?,
            &folder::split_folder(&base, split, "B", "data.path")?,
            size,
            channels,
        )?,
    };
    ds.name = cfg.dataset.clone();
    if cfg.direction == "BtoA" {
        let b = ds.domain_b.as_mut().expect("a two-domain set");
        std::mem::swap(&mut ds.images, &mut b.images);
        // Labels belong to the first domain's images; an unpaired B has none of its own.
        if !b.paired {
            ds.labels = None;
            ds.num_classes = 0;
            ds.indices = (0..ds.images.size()[0]).collect();
        }
    }
    Ok(ds)
}

/// The central `size` × `size` window of NCHW images (a view, no copy): what evaluation and
/// pictures use when training crops at random.
pub fn center_crop(images: &tch::Tensor, size: i64) -> tch::Tensor {
    let dims = images.size();
    let (h, w) = (dims[2], dims[3]);
    images.narrow(2, (h - size) / 2, size.min(h)).narrow(3, (w - size) / 2, size.min(w))
}

/// Data as the networks see it: uint8 images as floats in [-1, 1]; float data (a toy
/// mixture's points) as it is.
pub fn to_unit_range(x: &tch::Tensor) -> tch::Tensor {
    if x.kind() == tch::Kind::Uint8 {
        x.to_kind(tch::Kind::Float) / 127.5 - 1.0
    } else {
        x.shallow_clone()
    }
}

/// Generated images in [-1, 1] as uint8 pixels, (x + 1)·127.5 rounded and clamped: what the
/// metrics and exported datasets see. (Sample grids round half up instead: `track::grid`.)
pub fn to_pixels(x: &tch::Tensor) -> tch::Tensor {
    ((x + 1.0) * 127.5).round().clamp(0.0, 255.0).to_kind(tch::Kind::Uint8)
}

/// What an architecture needs to know about the data: channels, height, width (after the crop),
/// classes.
pub fn spec(ds: &Dataset) -> lab_plugin_api::DataSpec {
    let size = ds.images.size();
    let (height, width) = match ds.crop {
        Some(side) => (side, side),
        None => (size[2], size[3]),
    };
    lab_plugin_api::DataSpec { channels: size[1], height, width, num_classes: ds.num_classes }
}

/// The first file among `names` that exists in `dir`.
pub(crate) fn first_existing(dir: &Path, names: &[String]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_toml() {
        let cfg = DataConfig::default();
        cfg.validate().unwrap();
        let text = toml::to_string(&cfg).unwrap();
        let back: DataConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        let with_paths = DataConfig { root: Some("/r".into()), path: Some("/p".into()), ..cfg };
        let back: DataConfig = toml::from_str(&toml::to_string(&with_paths).unwrap()).unwrap();
        assert_eq!(back, with_paths);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<DataConfig>("datset = \"mnist\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `datset`"), "{err}");
    }

    #[test]
    fn unknown_dataset_lists_the_valid_names_and_suggests_one() {
        let cfg = DataConfig { dataset: "cifar-10".into(), ..Default::default() };
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "[data] dataset = \"cifar-10\" is not a dataset lab knows: expected one of fashion-mnist, mnist, \
             cifar10, image-folder, paired-folder, unpaired-folders, edges2fashion, fashion2inverted, shapes, ring, grid \
             (did you mean \"cifar10\"?)"
        );
        let cfg = DataConfig { dataset: "imagenet".into(), ..Default::default() };
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(
            msg.ends_with(
                "expected one of fashion-mnist, mnist, cifar10, image-folder, paired-folder, unpaired-folders, \
                 edges2fashion, fashion2inverted, shapes, ring, grid"
            ),
            "{msg}"
        );
        assert_eq!(did_you_mean("fashion_mnist", DATASETS).as_deref(), Some("fashion-mnist"));
        assert_eq!(did_you_mean("Shape", DATASETS).as_deref(), Some("shapes"));
    }

    #[test]
    fn invalid_values_name_the_key_and_what_is_expected() {
        let check = |cfg: DataConfig, expected: &str| assert_eq!(cfg.validate().unwrap_err().to_string(), expected);
        let d = DataConfig::default;
        check(
            DataConfig { fraction: 0.0, ..d() },
            "[data] fraction = 0: expected a share of the split in (0, 1], e.g. 0.1 for 10%",
        );
        check(
            DataConfig { fraction: 1.5, ..d() },
            "[data] fraction = 1.5: expected a share of the split in (0, 1], e.g. 0.1 for 10%",
        );
        check(
            DataConfig { fraction: f64::NAN, ..d() },
            "[data] fraction = NaN: expected a share of the split in (0, 1], e.g. 0.1 for 10%",
        );
        check(DataConfig { split: "val".into(), ..d() }, "[data] split = \"val\": expected `train` or `test`");
        check(
            DataConfig { subset: "last".into(), ..d() },
            "[data] subset = \"last\": expected `random` (seeded random choice) or `first` (the first N)",
        );
        check(
            DataConfig { dataset: "image-folder".into(), ..d() },
            "[data] path = nothing: expected the folder of PNG/JPEG images for dataset = \"image-folder\" (e.g. path = \"/data/faces\")",
        );
        check(
            DataConfig { dataset: "shapes".into(), channels: 2, ..d() },
            "[data] channels = 2: expected 1 (grey) or 3 (RGB)",
        );
        check(
            DataConfig { dataset: "shapes".into(), image_size: 0, ..d() },
            "[data] image_size = 0: expected an image side between 1 and 4096 pixels",
        );
        check(
            DataConfig { dataset: "shapes".into(), synthetic_count: 0, ..d() },
            "[data] synthetic_count = 0: expected at least 1 image",
        );
        check(
            DataConfig { dataset: "grid".into(), toy_modes: 9, toy_endpoint: true, ..d() },
            "[data] toy_endpoint = true with 9 `grid`: expected `false`, or `true` on a `ring` of at least 3 components (2 modes)",
        );
        DataConfig { dataset: "ring".into(), toy_modes: 9, toy_endpoint: true, ..d() }.validate().unwrap();
        // Keys that only matter to other datasets are not checked.
        DataConfig { channels: 2, ..d() }.validate().unwrap();
    }

    #[test]
    fn load_size_is_a_side_at_least_the_crop_and_only_for_image_folders() {
        let check = |cfg: DataConfig, expected: &str| assert_eq!(cfg.validate().unwrap_err().to_string(), expected);
        let folder =
            || DataConfig { dataset: "paired-folder".into(), path: Some("/data/facades".into()), ..Default::default() };
        check(
            DataConfig { load_size: 30, ..folder() },
            "[data] load_size = 30: expected 0 (no crop) or a side between image_size (32) and 4096 pixels that \
             images are resized to before an image_size crop",
        );
        check(
            DataConfig { load_size: 36, ..Default::default() },
            "[data] load_size = 36: expected 0 for this dataset: resizing and cropping on load applies to image \
             folders and the two-domain sets",
        );
        DataConfig { load_size: 36, ..folder() }.validate().unwrap();
        DataConfig { load_size: 36, split: "test".into(), ..folder() }.validate().unwrap();
        check(
            DataConfig { direction: "AB".into(), ..folder() },
            "[data] direction = \"AB\": expected \"AtoB\" (the first domain into the second) or \"BtoA\" (the other way)",
        );
        check(
            DataConfig { direction: "BtoA".into(), ..Default::default() },
            "[data] direction = \"BtoA\": expected \"AtoB\" for a dataset of one domain (\"BtoA\" swaps the domains of a two-domain set)",
        );
        check(
            DataConfig { dataset: "image-folder".into(), path_b: Some("/b".into()), ..folder() },
            "[data] path_b = \"/b\": expected nothing for dataset = \"image-folder\" (path_b is the second domain \
             of \"paired-folder\" or \"unpaired-folders\")",
        );
    }

    #[test]
    fn the_stand_ins_are_built_once_and_read_back_through_the_real_loaders() {
        if !Path::new(idx::DEBIAN_FASHION_MNIST).join("t10k-labels-idx1-ubyte.gz").is_file() {
            println!("skipped: Fashion-MNIST is not in {}", idx::DEBIAN_FASHION_MNIST);
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let cfg = |dataset: &str, split: &str| DataConfig {
            dataset: dataset.into(),
            root: Some(tmp.path().to_path_buf()),
            split: split.into(),
            channels: 1,
            download: false,
            ..Default::default()
        };
        let fashion = load(&DataConfig { dataset: "fashion-mnist".into(), ..cfg("fashion-mnist", "test") }).unwrap();
        let padded =
            |i: i64| Vec::<u8>::try_from(fashion.images.get(i).constant_pad_nd([2, 2, 2, 2]).flatten(0, -1)).unwrap();

        let edges = load(&cfg("edges2fashion", "test")).unwrap();
        assert_eq!(edges.images.size(), [1000, 1, 32, 32]);
        let b = edges.domain_b.as_ref().unwrap();
        assert!(b.paired);
        // Files sort by class folder, then index: find test image 0 (an ankle boot, class 9).
        let position = edges.indices.len() as i64
            - fashion.labels.as_ref().unwrap().narrow(0, 0, 1000).eq(9).sum(tch::Kind::Int64).int64_value(&[]);
        assert_eq!(edges.labels.as_ref().unwrap().int64_value(&[position]), 9);
        assert_eq!(Vec::<u8>::try_from(b.images.get(position).flatten(0, -1)).unwrap(), padded(0));
        let a = Vec::<u8>::try_from(edges.images.get(position).flatten(0, -1)).unwrap();
        assert_eq!(a, standin::sobel_edges(&padded(0)));
        assert_eq!(load(&cfg("edges2fashion", "train")).unwrap().len(), 6000);

        let unpaired = load(&cfg("fashion2inverted", "test")).unwrap();
        assert_eq!(unpaired.images.size(), [500, 1, 32, 32]);
        let b = unpaired.domain_b.as_ref().unwrap();
        assert!(!b.paired);
        assert_eq!(b.images.size(), [500, 1, 32, 32]);
        // Domain B is made of other images (500..1000), inverted and turned.
        let first_b = Vec::<u8>::try_from(b.images.get(0).flatten(0, -1)).unwrap();
        let sources: Vec<Vec<u8>> = (500..1000).map(|i| standin::invert_and_turn(padded(i))).collect();
        assert!(sources.contains(&first_b));
        let first_a = Vec::<u8>::try_from(unpaired.images.get(0).flatten(0, -1)).unwrap();
        assert!((0..500).any(|i| padded(i) == first_a));
        // Built once: a second load finds the folder and builds nothing.
        let modified = std::fs::metadata(tmp.path().join("fashion2inverted")).unwrap().modified().unwrap();
        load(&cfg("fashion2inverted", "train")).unwrap();
        assert_eq!(std::fs::metadata(tmp.path().join("fashion2inverted")).unwrap().modified().unwrap(), modified);
    }

    #[test]
    fn a_crop_narrows_the_spec_and_centred_gives_the_central_window() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..2u8 {
            let img = image::GrayImage::from_fn(12, 6, |x, y| image::Luma([(y * 6 + x % 6) as u8 * 4 + i]));
            img.save(tmp.path().join(format!("{i}.png"))).unwrap();
        }
        let cfg = DataConfig {
            dataset: "paired-folder".into(),
            path: Some(tmp.path().to_path_buf()),
            image_size: 4,
            load_size: 6,
            channels: 1,
            ..Default::default()
        };
        let ds = load(&cfg).unwrap();
        assert_eq!(ds.images.size(), [2, 1, 6, 6]);
        assert_eq!(ds.crop, Some(4));
        assert_eq!(spec(&ds), lab_plugin_api::DataSpec { channels: 1, height: 4, width: 4, num_classes: 0 });
        let whole = ds.images.copy();
        // `BtoA` swaps the halves: the right half becomes what is translated.
        let swapped = load(&DataConfig { direction: "BtoA".into(), ..cfg.clone() }).unwrap();
        assert!(swapped.images.equal(&ds.domain_b.as_ref().unwrap().images));
        assert!(swapped.domain_b.as_ref().unwrap().images.equal(&whole));
        let centred = ds.centred();
        assert_eq!(centred.crop, None);
        assert!(centred.images.equal(&whole.narrow(2, 1, 4).narrow(3, 1, 4)));
        assert!(centred.domain_b.unwrap().images.size() == [2, 1, 4, 4]);
    }

    #[test]
    fn resolved_root_prefers_the_config() {
        let cfg = DataConfig { root: Some("/data/here".into()), ..Default::default() };
        assert_eq!(cfg.resolved_root(), PathBuf::from("/data/here"));
        let fallback = DataConfig::default().resolved_root();
        assert!(fallback.ends_with(".cache/lab/datasets") || std::env::var_os("LAB_DATA").is_some());
    }

    #[test]
    fn fashion_mnist_falls_back_to_debian_and_takes_a_first_n_subset() {
        if !Path::new(idx::DEBIAN_FASHION_MNIST).join("t10k-labels-idx1-ubyte.gz").is_file() {
            println!(
                "skipped: Fashion-MNIST is not in {} (apt install dataset-fashion-mnist)",
                idx::DEBIAN_FASHION_MNIST
            );
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let cfg = DataConfig {
            root: Some(tmp.path().to_path_buf()),
            split: "test".into(),
            fraction: 0.01,
            subset: "first".into(),
            download: false,
            ..Default::default()
        };
        let ds = load(&cfg).unwrap();
        assert_eq!(ds.images.size(), [100, 1, 28, 28]);
        assert_eq!(ds.indices, (0..100).collect::<Vec<i64>>());
        assert_eq!(spec(&ds), lab_plugin_api::DataSpec { channels: 1, height: 28, width: 28, num_classes: 10 });
        // The first test image of Fashion-MNIST is an ankle boot (class 9).
        assert_eq!(ds.labels.as_ref().unwrap().int64_value(&[0]), 9);
    }

    #[test]
    fn load_shapes_with_a_subset_and_its_spec() {
        let cfg = DataConfig {
            dataset: "shapes".into(),
            synthetic_count: 40,
            image_size: 16,
            channels: 1,
            fraction: 0.25,
            subset_seed: 5,
            ..Default::default()
        };
        let ds = load(&cfg).unwrap();
        assert_eq!(ds.images.size(), [10, 1, 16, 16]);
        assert_eq!(ds.images.kind(), tch::Kind::Uint8);
        assert_eq!(ds.indices.len(), 10);
        assert!(ds.indices.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(spec(&ds), lab_plugin_api::DataSpec { channels: 1, height: 16, width: 16, num_classes: 3 });
        // The subset rows are exactly the source rows named by `indices`.
        let full = load(&DataConfig { fraction: 1.0, ..cfg.clone() }).unwrap();
        let picked = full.images.index_select(0, &tch::Tensor::from_slice(&ds.indices));
        assert!(picked.equal(&ds.images));
        let labels = full.labels.as_ref().unwrap().index_select(0, &tch::Tensor::from_slice(&ds.indices));
        assert!(labels.equal(ds.labels.as_ref().unwrap()));
    }

    #[test]
    fn count_keeps_that_many_images_by_the_fraction_rule() {
        let shapes = DataConfig {
            dataset: "shapes".into(),
            synthetic_count: 40,
            image_size: 16,
            channels: 1,
            subset_seed: 5,
            ..Default::default()
        };
        let by_count = load(&DataConfig { count: 10, ..shapes.clone() }).unwrap();
        let by_fraction = load(&DataConfig { fraction: 0.25, ..shapes.clone() }).unwrap();
        assert_eq!(by_count.indices, by_fraction.indices);
        assert!(by_count.images.equal(&by_fraction.images));
        assert_eq!(load(&DataConfig { count: 40, ..shapes.clone() }).unwrap().len(), 40);

        let too_many = load(&DataConfig { count: 41, ..shapes.clone() }).unwrap_err();
        assert_eq!(
            too_many.to_string(),
            "[data] count = 41: expected at most the 40 images of the train split of shapes"
        );
        let both = DataConfig { count: 10, fraction: 0.5, ..shapes }.validate().unwrap_err();
        assert_eq!(
            both.to_string(),
            "[data] count = 10 with fraction = 0.5: expected either `count` (a number of images) or \
             `fraction` (a share), not both; remove one"
        );
    }
}
