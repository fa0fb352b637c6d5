//! The `[model.config]` table of the `gran` architecture, and its validation against the data.
//!
//! The defaults are the official networks for the data's size (jiwoongim/GRAN): five steps of a
//! 100-value z and a D hidden layer of 100; at 28×28 (`recGenI28.py`, `convnet_cuda28.py` with
//! their constructors' `nkerns`/`ckern`) G's 7×7 map of 256 channels and D's convolutions of 80
//! and 40; at 32×32 (`recGenI32.py`, `convnet_cuda32.py`, `main_granI_cifar10.py`) G's 4×4 map
//! of 1024 channels and D's convolutions of 1024, 512 and 256.
use lab_plugin_api::config::check::{at_least, positive};
use lab_plugin_api::{DataSpec, Error};
use serde::{Deserialize, Serialize};

/// The image sides the networks are defined for: two stride-2 layers between a 7×7 map and
/// 28×28 (MNIST), three between a 4×4 map and 32×32 (CIFAR-10).
pub const SUPPORTED_RESOLUTIONS: [i64; 2] = [28, 32];

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
    /// Channels of G's first map (7×7 or 4×4); each deconvolution but the last halves them and
    /// the encoder mirrors them (the official `nkerns[0]·ckern`: 8·32 = 256 at 28×28, 8·128 =
    /// 1024 at 32×32); 0 takes the official width for the data's size.
    pub g_channels: i64,
    /// Channels of D's first convolution; each next one halves them (the official
    /// `nkerns[1]·ckern`: 8·10 = 80 at 28×28, 8·128 = 1024 at 32×32); 0 takes the official
    /// width for the data's size.
    pub d_channels: i64,
    /// Width of D's tanh hidden layer before the logit (the official `num_hid`, 100).
    pub d_hidden: i64,
    /// Fresh samples behind `eval/canvas_share_max` at each evaluation.
    pub eval_count: i64,
}

impl Default for GranConfig {
    fn default() -> Self {
        Self { time_steps: 5, z_dim: 100, g_channels: 0, d_channels: 0, d_hidden: 100, eval_count: 1000 }
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
    pub eval_count: i64,
    pub image_channels: i64,
    pub resolution: i64,
}

impl Settings {
    /// The stride-2 layers between the first map and the image: 2 at 28×28, 3 at 32×32.
    pub fn levels(&self) -> i64 {
        if self.resolution == 32 {
            3
        } else {
            2
        }
    }

    /// The side of G's first feature map and of the encoder's and D's last: 7 or 4.
    pub fn base(&self) -> i64 {
        self.resolution >> self.levels()
    }

    /// The latent's width per image: one z_t of `z_dim` values per step, step after step.
    pub fn latent_width(&self) -> i64 {
        self.time_steps * self.z_dim
    }
}

impl GranConfig {
    /// Checks every key and the data's shape.
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        let (h, w) = (data.height, data.width);
        if h != w || !SUPPORTED_RESOLUTIONS.contains(&h) {
            return Err(Error::new(format!(
                "gran has the official 28x28 (MNIST) and 32x32 (CIFAR-10) networks, but the data is {h}x{w}; \
                 use 28x28 or 32x32 data"
            )));
        }
        // Widths are halved once per stride-2 layer after the first: once at 28, twice at 32.
        let halvings = if h == 32 { 2 } else { 1 };
        let (g_official, d_official) = if h == 32 { (1024, 1024) } else { (256, 80) };
        let g_channels = halvable("g_channels", or_official(self.g_channels, g_official), halvings)?;
        let d_channels = halvable("d_channels", or_official(self.d_channels, d_official), halvings)?;
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
            eval_count: positive("eval_count", self.eval_count)?,
            image_channels: data.channels,
            resolution: h,
        })
    }
}

fn or_official(value: i64, official: i64) -> i64 {
    if value == 0 {
        official
    } else {
        value
    }
}

/// A width the next `halvings` layers halve in turn: a multiple of 2^halvings, at least that.
fn halvable(key: &str, value: i64, halvings: u32) -> lab_plugin_api::Result<i64> {
    let step = 1 << halvings;
    at_least(key, value, step)?;
    if value % step != 0 {
        return Err(Error::config(
            key,
            format!("the next {halvings} layer(s) halve the channels in turn, so it must be a multiple of {step}, found {value}"),
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
    fn defaults_at_32_pixels_are_the_official_cifar10_networks() {
        let s = GranConfig::default().resolve(&data(32)).unwrap();
        assert_eq!((s.g_channels, s.d_channels, s.levels(), s.base()), (1024, 1024, 3, 4));
    }

    #[test]
    fn only_28_and_32_pixels_are_supported() {
        let err = GranConfig::default().resolve(&data(64)).unwrap_err().to_string();
        assert!(
            err.starts_with("gran has the official 28x28 (MNIST) and 32x32") && err.contains("data is 64x64"),
            "{err}"
        );
    }

    #[test]
    fn widths_and_steps_are_checked() {
        let err = GranConfig { g_channels: 7, ..Default::default() }.resolve(&data(28)).unwrap_err().to_string();
        assert_eq!(
            err,
            "key `g_channels`: the next 1 layer(s) halve the channels in turn, so it must be a multiple of 2, found 7"
        );
        let err = GranConfig { d_channels: 6, ..Default::default() }.resolve(&data(32)).unwrap_err().to_string();
        assert!(err.contains("multiple of 4, found 6"), "{err}");
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
