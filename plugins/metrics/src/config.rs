//! The `[metrics.<name>]` config tables of `fid`, `kid`, `is` and `pr`. The keys about the
//! feature network are the same in all four ([`NetworkConfig`]); each metric adds its own.
use serde::{Deserialize, Serialize};

pub use lab_features::NetworkConfig;

/// The boolean arguments that follow the images in `forward` to get the 2048-d pool features
/// of `inception-2015-12-05.pt`: `forward(images, return_features=True)`.
fn feature_args() -> Vec<bool> {
    vec![true]
}

/// `fid`: Fréchet Inception distance (Heusel et al., 2017).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FidConfig {
    #[serde(flatten)]
    pub network: NetworkConfig,
    /// Boolean arguments passed positionally after the images to `forward` to get features
    /// (default `[true]`: `forward(images, return_features=True)`).
    pub feature_args: Vec<bool>,
    /// A reference-statistics file (safetensors: `mu`, `sigma`, `count`, `features_sha256`).
    /// "" = the reference side is accumulated from real batches at every evaluation. If set and
    /// the file exists, it is the reference and real batches are ignored (the protocol says
    /// so); if set and missing, real batches are accumulated once, written there at the first
    /// `compute`, and reused after every `reset`. Name it with `stats_file_name` so that a
    /// different dataset, split, count or feature network never reuses it.
    pub reference_stats: String,
}

impl Default for FidConfig {
    fn default() -> Self {
        Self { network: NetworkConfig::default(), feature_args: feature_args(), reference_stats: String::new() }
    }
}

/// `kid`: kernel Inception distance (Bińkowski et al., 2018).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KidConfig {
    #[serde(flatten)]
    pub network: NetworkConfig,
    /// As in [`FidConfig::feature_args`].
    pub feature_args: Vec<bool>,
    /// How many random subsets the unbiased MMD² is averaged over.
    pub subsets: i64,
    /// Samples per side in each subset; clamped to the smaller side's count.
    pub subset_size: i64,
    /// Seed of the subset draws (a generator of the metric's own: libtorch's global RNG, which
    /// the trainer owns, is never touched).
    pub seed: u64,
}

impl Default for KidConfig {
    fn default() -> Self {
        Self {
            network: NetworkConfig::default(),
            feature_args: feature_args(),
            subsets: 100,
            subset_size: 1000,
            seed: 0,
        }
    }
}

/// `is`: Inception score (Salimans et al., 2016).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IsConfig {
    #[serde(flatten)]
    pub network: NetworkConfig,
    /// Boolean arguments passed positionally after the images to `forward` to get class
    /// probabilities. The default `[false, false, true]` is `inception-2015-12-05.pt`'s
    /// `(return_features=False, use_fp16=False, no_output_bias=True)`: softmax without the
    /// output layer's bias, as the original TF Inception score and stylegan2-ada-pytorch compute
    /// it. A network whose `forward` takes only `(x, return_features)` needs `[false]`.
    pub probs_args: Vec<bool>,
    /// The network returns logits rather than probabilities: apply a softmax first.
    pub softmax: bool,
    /// The generated samples are cut into this many consecutive splits; the score is the mean
    /// over splits and `is_std` their (population) standard deviation.
    pub splits: i64,
}

impl Default for IsConfig {
    fn default() -> Self {
        Self { network: NetworkConfig::default(), probs_args: vec![false, false, true], softmax: false, splits: 10 }
    }
}

/// `pr`: improved precision and recall (Kynkäänniemi et al., 2019).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrConfig {
    #[serde(flatten)]
    pub network: NetworkConfig,
    /// As in [`FidConfig::feature_args`].
    pub feature_args: Vec<bool>,
    /// The k of the k-nearest-neighbour radii that estimate each manifold.
    pub k: i64,
    /// Rows of the pairwise-distance matrix computed at once: bounds memory to
    /// `row_batch × samples × 8` bytes.
    pub row_batch: i64,
}

impl Default for PrConfig {
    fn default() -> Self {
        Self { network: NetworkConfig::default(), feature_args: feature_args(), k: 3, row_batch: 1000 }
    }
}

/// Refuses an integer key below `min`, naming the key.
pub(crate) fn at_least(key: &str, value: i64, min: i64) -> lab_plugin_api::Result<()> {
    lab_plugin_api::config::check::at_least(key, value, min).map(|_| ())
}
