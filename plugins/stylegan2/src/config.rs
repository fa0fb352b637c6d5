//! The `[model.config]` table of the `stylegan2` architecture, and its validation against the
//! data.
//!
//! The defaults are stylegan2-ada-pytorch's `--cfg=cifar` (`train.py`'s `cfg_specs['cifar']` and
//! its overrides; shared/ZOO.md §14): z = w = 512, a 2-layer mapping network in G and the default
//! 8 layers in D's label mapping, `channel_base` 32768 capped at 512 (512 channels at every
//! resolution from 4 to 32), minibatch-stddev groups of 32, activations clamped to ±256, D
//! without residual connections (`orig`), no style mixing. DiffAugment's StyleGAN2 for CIFAR-10
//! is `channel_base = 4096`, `mapping_layers = 8`, `d_architecture = "resnet"`,
//! `mbstd_group_size = 4`, `conv_clamp = 0`, `style_mixing_prob = 0.9` (its experiment files
//! set them).
use lab_plugin_api::config::check::{one_of, positive, unit_interval};
use lab_plugin_api::{DataSpec, Error};
use serde::{Deserialize, Serialize};

/// What users write under `[model.config]` for `model.architecture = "stylegan2"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StyleGan2Config {
    /// Length of z, drawn from N(0, I).
    pub z_dim: i64,
    /// Length of the intermediate latent w (and of D's mapped label).
    pub w_dim: i64,
    /// Fully connected layers of G's mapping network (cifar: 2; the paper's FFHQ: 8).
    pub mapping_layers: i64,
    /// Layers of D's label mapping, for a conditional model (stylegan2-ada keeps the default 8).
    pub d_mapping_layers: i64,
    /// The mapping networks' learning-rate multiplier: their weights are stored ×1/m and used
    /// ×m/√fan_in, so an optimizer's step moves them m times slower.
    pub mapping_lr_multiplier: f64,
    /// Channels at resolution r are min(channel_base / r, channel_max).
    pub channel_base: i64,
    pub channel_max: i64,
    /// D's blocks: `orig` (two convolutions; cifar) or `resnet` (plus a 1×1 skip, each branch
    /// scaled by √½; the default of stylegan2-ada at other resolutions).
    pub d_architecture: String,
    /// Images per minibatch-stddev group (at most the batch; the batch must be a multiple).
    pub mbstd_group_size: i64,
    /// Channels of the minibatch-stddev feature; 0 turns the layer off.
    pub mbstd_channels: i64,
    /// Activations of every convolution are clamped to ±conv_clamp (stylegan2-ada: 256, which
    /// it sets for mixed precision and keeps in float32); 0 turns the clamp off.
    pub conv_clamp: f64,
    /// In training, the probability that a generated image takes its styles from two latents,
    /// switching at a random layer (cifar: 0; the paper: 0.9).
    pub style_mixing_prob: f64,
    /// The decay of the running mean of w (`w_avg`) that truncation pulls towards.
    pub w_avg_beta: f64,
    /// Truncation ψ for images the core draws outside training (grids, metrics, `lab
    /// generate`): w ← w_avg + ψ·(w − w_avg). 1 is no truncation.
    pub truncation_psi: f64,
    /// Per-pixel noise inputs: `random` (fresh noise each pass, the default), `const` (a fixed
    /// noise image per layer, stored with the weights) or `none`.
    pub noise_mode: String,
    /// Class-conditional (stylegan2-ada's `--cond=1`): a label embedding joins z in the mapping
    /// network and D projects its output on a mapped label; needs labelled data.
    pub conditional: bool,
}

impl Default for StyleGan2Config {
    fn default() -> Self {
        Self {
            z_dim: 512,
            w_dim: 512,
            mapping_layers: 2,
            d_mapping_layers: 8,
            mapping_lr_multiplier: 0.01,
            channel_base: 32768,
            channel_max: 512,
            d_architecture: "orig".into(),
            mbstd_group_size: 32,
            mbstd_channels: 1,
            conv_clamp: 256.0,
            style_mixing_prob: 0.0,
            w_avg_beta: 0.995,
            truncation_psi: 1.0,
            noise_mode: "random".into(),
            conditional: false,
        }
    }
}

/// D's block structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DArchitecture {
    Orig,
    Resnet,
}

/// Where the noise inputs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseMode {
    Random,
    Const,
    None,
}

/// A validated config, resolved against the data.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub resolution: i64,
    pub image_channels: i64,
    pub z_dim: i64,
    pub w_dim: i64,
    pub mapping_layers: i64,
    pub d_mapping_layers: i64,
    pub mapping_lr_multiplier: f64,
    pub channel_base: i64,
    pub channel_max: i64,
    pub d_architecture: DArchitecture,
    pub mbstd_group_size: i64,
    pub mbstd_channels: i64,
    /// `None`: no clamp.
    pub conv_clamp: Option<f64>,
    pub style_mixing_prob: f64,
    pub w_avg_beta: f64,
    pub truncation_psi: f64,
    pub noise_mode: NoiseMode,
    /// `Some(number of classes)` for a conditional model.
    pub classes: Option<i64>,
}

impl Settings {
    /// Channels at resolution `res`.
    pub fn channels(&self, res: i64) -> i64 {
        (self.channel_base / res).min(self.channel_max)
    }

    /// The resolutions of G's blocks, 4, 8, ..., the image's.
    pub fn resolutions(&self) -> Vec<i64> {
        std::iter::successors(Some(4), |r| Some(r * 2)).take_while(|r| *r <= self.resolution).collect()
    }

    /// How many w vectors the synthesis network reads: one per convolution, plus the last
    /// block's toRGB (the others share theirs with the next block's first convolution).
    pub fn num_ws(&self) -> i64 {
        2 * self.resolutions().len() as i64
    }
}

impl StyleGan2Config {
    /// Checks every key and resolves the resolution, image channels and classes from the data.
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        let channel_base = positive("channel_base", self.channel_base)?;
        let channel_max = positive("channel_max", self.channel_max)?;
        let resolution = resolution(data)?;
        if channel_base / resolution < 1 {
            return Err(Error::config(
                "channel_base",
                format!(
                    "{channel_base} leaves no channels at {resolution}x{resolution} (channels are \
                     channel_base / resolution); use at least {resolution}"
                ),
            ));
        }
        let d_architecture = match one_of("d_architecture", &self.d_architecture, &["orig", "resnet"])? {
            "orig" => DArchitecture::Orig,
            _ => DArchitecture::Resnet,
        };
        let noise_mode = match one_of("noise_mode", &self.noise_mode, &["random", "const", "none"])? {
            "random" => NoiseMode::Random,
            "const" => NoiseMode::Const,
            _ => NoiseMode::None,
        };
        if self.mbstd_channels < 0 {
            return Err(Error::config(
                "mbstd_channels",
                format!("expected 0 (off) or more, found {}", self.mbstd_channels),
            ));
        }
        let mbstd_group_size = positive("mbstd_group_size", self.mbstd_group_size)?;
        if self.conv_clamp < 0.0 || !self.conv_clamp.is_finite() {
            return Err(Error::config(
                "conv_clamp",
                format!("expected a positive bound, or 0 for no clamp, found {}", self.conv_clamp),
            ));
        }
        if !(self.mapping_lr_multiplier > 0.0 && self.mapping_lr_multiplier.is_finite()) {
            return Err(Error::config(
                "mapping_lr_multiplier",
                format!("expected a positive number, found {}", self.mapping_lr_multiplier),
            ));
        }
        let w_dim = positive("w_dim", self.w_dim)?;
        let channels_4 = (channel_base / 4).min(channel_max);
        let mbstd_channels = self.mbstd_channels;
        if mbstd_channels > 0 && channels_4 % mbstd_channels != 0 {
            return Err(Error::config(
                "mbstd_channels",
                format!("must divide the {channels_4} channels at 4x4, found {mbstd_channels}"),
            ));
        }
        Ok(Settings {
            resolution,
            image_channels: data.channels.max(1),
            z_dim: positive("z_dim", self.z_dim)?,
            w_dim,
            mapping_layers: positive("mapping_layers", self.mapping_layers)?,
            d_mapping_layers: positive("d_mapping_layers", self.d_mapping_layers)?,
            mapping_lr_multiplier: self.mapping_lr_multiplier,
            channel_base,
            channel_max,
            d_architecture,
            mbstd_group_size,
            mbstd_channels,
            conv_clamp: (self.conv_clamp > 0.0).then_some(self.conv_clamp),
            style_mixing_prob: unit_interval("style_mixing_prob", self.style_mixing_prob)?,
            w_avg_beta: unit_interval("w_avg_beta", self.w_avg_beta)?,
            truncation_psi: self.truncation_psi,
            noise_mode,
            classes: self.classes(data)?,
        })
    }

    fn classes(&self, data: &DataSpec) -> lab_plugin_api::Result<Option<i64>> {
        if !self.conditional {
            return Ok(None);
        }
        match data.num_classes {
            n if n > 0 => Ok(Some(n)),
            _ => Err(Error::config(
                "conditional",
                "a conditional stylegan2 needs class labels, but the data has none; set `conditional = false` \
                 or use a labelled dataset",
            )),
        }
    }
}

/// Square images whose side is a power of two, at least 8 (D has a block above its 4×4 epilogue).
fn resolution(data: &DataSpec) -> lab_plugin_api::Result<i64> {
    let (h, w) = (data.height, data.width);
    if h != w || h < 8 || (h & (h - 1)) != 0 {
        return Err(Error::config(
            "resolution",
            format!(
                "stylegan2 draws square images whose side is a power of two (8, 16, 32, 64, ...), but the data \
                 is {h}x{w}; resize the data (e.g. `data.image_size = 32`) or use another architecture"
            ),
        ));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(channels: i64, side: i64, num_classes: i64) -> DataSpec {
        DataSpec { channels, height: side, width: side, num_classes }
    }

    #[test]
    fn defaults_are_stylegan2_adas_cifar_config() {
        let s = StyleGan2Config::default().resolve(&data(3, 32, 10)).unwrap();
        assert_eq!(s.resolutions(), [4, 8, 16, 32]);
        assert_eq!([4, 8, 16, 32].map(|r| s.channels(r)), [512; 4], "fmaps 1: 512 channels everywhere");
        assert_eq!(s.num_ws(), 8);
        assert_eq!((s.mapping_layers, s.d_mapping_layers, s.mbstd_group_size), (2, 8, 32));
        assert_eq!((s.d_architecture, s.conv_clamp, s.style_mixing_prob), (DArchitecture::Orig, Some(256.0), 0.0));
        assert_eq!(s.classes, None);
        let diffaugment =
            StyleGan2Config { channel_base: 4096, ..Default::default() }.resolve(&data(3, 32, 0)).unwrap();
        assert_eq!([4, 8, 16, 32].map(|r| diffaugment.channels(r)), [512, 512, 256, 128]);
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = |c: StyleGan2Config, d: DataSpec| c.resolve(&d).unwrap_err().to_string();
        assert_eq!(
            err(StyleGan2Config::default(), data(1, 28, 10)),
            "key `resolution`: stylegan2 draws square images whose side is a power of two (8, 16, 32, 64, ...), \
             but the data is 28x28; resize the data (e.g. `data.image_size = 32`) or use another architecture"
        );
        let c = StyleGan2Config { d_architecture: "skip".into(), ..Default::default() };
        assert_eq!(err(c, data(3, 32, 0)), "key `d_architecture`: expected orig or resnet, found \"skip\"");
        let c = StyleGan2Config { noise_mode: "fixed".into(), ..Default::default() };
        assert_eq!(err(c, data(3, 32, 0)), "key `noise_mode`: expected random, const or none, found \"fixed\"");
        let c = StyleGan2Config { conditional: true, ..Default::default() };
        assert!(err(c, data(3, 32, 0)).starts_with("key `conditional`: a conditional stylegan2 needs class labels"));
        let c = StyleGan2Config { style_mixing_prob: 1.5, ..Default::default() };
        assert_eq!(err(c, data(3, 32, 0)), "key `style_mixing_prob`: expected a number in [0, 1], found 1.5");
        let c = StyleGan2Config { channel_base: 16, ..Default::default() };
        assert!(err(c, data(3, 32, 0)).starts_with("key `channel_base`: 16 leaves no channels at 32x32"));
    }

    #[test]
    fn unknown_keys_are_refused_through_the_api_parser() {
        let err = lab_plugin_api::config::parse::<StyleGan2Config>("mapping_layer = 2").unwrap_err().to_string();
        assert!(
            err.starts_with("key `mapping_layer`: not a key of this plugin; did you mean `mapping_layers`?"),
            "{err}"
        );
    }
}
