//! Where the feature network is and how images are fed to it: the keys every metric with a
//! feature network shares (flattened into each one's config table).
use serde::{Deserialize, Serialize};

/// Where the feature network is and how images are fed to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// Path of the TorchScript feature network. "" looks up `$LAB_FEATURES`, then
    /// `~/.cache/lab/inception-2015-12-05.pt` (the TF-Inception port of stylegan2-ada-pytorch).
    pub features: String,
    /// Repeat 1-channel (grayscale) images to 3 channels before the network, as the standard
    /// Inception expects RGB. Turn off only for a network trained on 1-channel images.
    pub repeat_gray: bool,
    /// Images per network call: bounds the memory the network's activations take. Results do
    /// not depend on it beyond float rounding.
    pub batch_size: i64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self { features: String::new(), repeat_gray: true, batch_size: 64 }
    }
}

impl NetworkConfig {
    /// Checks the keys that do not need the file system.
    pub fn validate(&self) -> lab_plugin_api::Result<()> {
        lab_plugin_api::config::check::at_least("batch_size", self.batch_size, 1).map(|_| ())
    }
}
