//! The `[model.config]` table of the `gran` architecture, and its validation against the data.
//!
//! The defaults are the official 28×28 networks (jiwoongim/GRAN `recGenI28.py` and
//! `convnet_cuda28.py` with their constructors' `nkerns`/`ckern`): five steps of a 100-value z,
//! G's 7×7 map of 256 channels, D's convolutions of 80 and 40 channels and a hidden layer of 100.
use lab_plugin_api::config::check::{at_least, positive};
use lab_plugin_api::{DataSpec, Error};
use serde::{Deserialize, Serialize};

/// The image side the networks are defined for: two stride-2 layers between a 7×7 map and it.
pub const SUPPORTED_RESOLUTION: i64 = 28;

/// What users write under `[model.config]` for `model.architecture = "gran"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GranConfig {
    /// T, the number of canvases drawn and summed (the official `num_steps`, 5 in the paper's
    /// main runs).
    pub time_steps: i64,
    /// Length of each step's z_t (and of the hidden codes h_z and h_c): the official
    /// `dim_sample`, 100. The latent of one image is `time_steps · z_dim` values.
    pub z_dim: i64,
    /// Channels of G's 7×7 map; its first deconvolution halves them and the encoder mirrors
    /// both (the official `nkerns[0]·ckern` = 8·32 = 256).
    pub g_channels: i64,
    /// Channels of D's first convolution; its second halves them (the official `nkerns[1]·ckern`
    /// = 8·10 = 80).
    pub d_channels: i64,
    /// Width of D's tanh hidden layer before the logit (the official `num_hid`, 100).
    pub d_hidden: i64,
}

impl Default for GranConfig {
    fn default() -> Self {
        Self { time_steps: 5, z_dim: 100, g_channels: 256, d_channels: 80, d_hidden: 100 }
    }
}

/// A validated config, resolved against the data: everything the networks need to be built.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub time_steps: i64,
    pub z_dim: i64,
    pub g_channels: i64,
    pub d_channels: i64,
    pub d_hidden: i64,
    pub image_channels: i64,
    pub resolution: i64,
}

impl Settings {
    /// The side of G's first feature map and of the encoder's and D's last: the image's / 4.
    pub fn base(&self) -> i64 {
        self.resolution / 4
    }

    /// The latent's width per image: one z_t of `z_dim` values per step, step after step.
    pub fn latent_width(&self) -> i64 {
        self.time_steps * self.z_dim
    }
}

impl GranConfig {
    /// Checks every key and the data's shape.
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        let g_channels = halvable("g_channels", self.g_channels)?;
        let d_channels = halvable("d_channels", self.d_channels)?;
        let (h, w) = (data.height, data.width);
        if h != SUPPORTED_RESOLUTION || w != SUPPORTED_RESOLUTION {
            return Err(Error::new(format!(
                "gran has the official 28x28 networks (7x7 map, two stride-2 layers), but the data is {h}x{w}; \
                 use 28x28 data (Fashion-MNIST, MNIST); the 32x32 CIFAR variant is not implemented"
            )));
        }
        if data.channels < 1 {
            return Err(Error::new(format!(
                "gran: the data reports {} image channels; expected at least 1",
                data.channels
            )));
        }
        Ok(Settings {
            time_steps: positive("time_steps", self.time_steps)?,
            z_dim: positive("z_dim", self.z_dim)?,
            g_channels,
            d_channels,
            d_hidden: positive("d_hidden", self.d_hidden)?,
            image_channels: data.channels,
            resolution: h,
        })
    }
}

/// A width the next layer halves: even and at least 2.
fn halvable(key: &str, value: i64) -> lab_plugin_api::Result<i64> {
    at_least(key, value, 2)?;
    if value % 2 != 0 {
        return Err(Error::config(
            key,
            format!("the next layer has half as many channels, so it must be even, found {value}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(side: i64) -> DataSpec {
        DataSpec { channels: 1, height: side, width: side, num_classes: 10 }
    }

    #[test]
    fn defaults_are_the_official_28x28_networks() {
        let s = GranConfig::default().resolve(&data(28)).unwrap();
        assert_eq!((s.time_steps, s.z_dim, s.g_channels, s.d_channels, s.d_hidden), (5, 100, 256, 80, 100));
        assert_eq!((s.base(), s.latent_width(), s.image_channels), (7, 500, 1));
    }

    #[test]
    fn only_28_pixels_are_supported() {
        let err = GranConfig::default().resolve(&data(32)).unwrap_err().to_string();
        assert!(err.starts_with("gran has the official 28x28 networks") && err.contains("data is 32x32"), "{err}");
    }

    #[test]
    fn widths_and_steps_are_checked() {
        let err = GranConfig { g_channels: 7, ..Default::default() }.resolve(&data(28)).unwrap_err().to_string();
        assert_eq!(err, "key `g_channels`: the next layer has half as many channels, so it must be even, found 7");
        let err = GranConfig { time_steps: 0, ..Default::default() }.resolve(&data(28)).unwrap_err().to_string();
        assert!(err.starts_with("key `time_steps`"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_through_the_api_parser() {
        let err = lab_plugin_api::config::parse::<GranConfig>("num_steps = 3").unwrap_err().to_string();
        assert!(err.starts_with("key `num_steps`: not a key of this plugin"), "{err}");
        let err = lab_plugin_api::config::parse::<GranConfig>("time_step = 3").unwrap_err().to_string();
        assert!(err.contains("did you mean `time_steps`?"), "{err}");
    }
}
