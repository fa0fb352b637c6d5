//! Where `lab` and its plugins keep downloaded and derived files, and the standard feature
//! network's identity. One definition, so that the core (which downloads the network) and the
//! metric plugins (which load it) agree on the path.
use std::path::PathBuf;

/// The standard feature network: the TorchScript port of TF-Inception (2015-12-05) that
/// stylegan2-ada-pytorch publishes and its FID, KID, IS and precision/recall use.
pub const INCEPTION_FILE: &str = "inception-2015-12-05.pt";
/// Where it is published.
pub const INCEPTION_URL: &str =
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt";
/// Its SHA-256 (95,607,719 bytes), as other tools that fetch it pin it too.
pub const INCEPTION_SHA256: &str = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4";
/// The environment variable naming another feature network file.
pub const FEATURES_ENV: &str = "LAB_FEATURES";

/// `$XDG_CACHE_HOME/lab` when that is set, else `~/.cache/lab` (relative to the working
/// directory when there is no `$HOME`).
pub fn cache_dir() -> PathBuf {
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
    };
    cache.join("lab")
}

/// Where the standard feature network lives when nothing names another file.
pub fn default_feature_network() -> PathBuf {
    cache_dir().join(INCEPTION_FILE)
}
