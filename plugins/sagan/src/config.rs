//! The `[model.config]` table of the `sagan` architecture, and its validation against the data.
//!
//! The defaults are StudioGAN's CIFAR-10 SAGAN (`src/configs/CIFAR10/SAGAN.yaml` on its ResNet
//! defaults): G 256 channels, D 128, z of 128, class-conditional, self-attention after G's
//! second block and after D's first.
use lab_plugin_api::config::check::positive;
use lab_plugin_api::DataSpec;
use serde::{Deserialize, Serialize};

/// Image sides the networks are defined for (StudioGAN's CIFAR-10 ResNet).
pub const SUPPORTED_RESOLUTIONS: [i64; 1] = [32];

/// G's residual up-blocks (4 → 8 → 16 → 32 pixels) and D's residual blocks (32 → 16 → 8 → 8 → 8).
pub const G_BLOCKS: i64 = 3;
pub const D_BLOCKS: i64 = 4;

/// What users write under `[model.config]` for `model.architecture = "sagan"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaganConfig {
    /// Channels of every G block (StudioGAN: `g_conv_dim · 4` = 256).
    pub g_channels: i64,
    /// Channels of every D block (StudioGAN: `d_conv_dim · 2` = 128).
    pub d_channels: i64,
    /// Length of the latent vector z, drawn from N(0, I).
    pub z_dim: i64,
    /// Image side in pixels; 0 takes it from the data. Supported: 32.
    pub resolution: i64,
    /// Class-conditional batch norm in G and a projection term in D (StudioGAN's SAGAN and the
    /// paper's ImageNet model); needs labelled data.
    pub conditional: bool,
    /// Self-attention after this G block, counted from 1 (StudioGAN's `attn_g_loc: [2]`, at
    /// 16×16); 0 for none.
    pub g_attention_after: i64,
    /// Self-attention after this D block, counted from 1 (StudioGAN's `attn_d_loc: [1]`, at
    /// 16×16); 0 for none.
    pub d_attention_after: i64,
}

impl Default for SaganConfig {
    fn default() -> Self {
        Self {
            g_channels: 256,
            d_channels: 128,
            z_dim: 128,
            resolution: 0,
            conditional: true,
            g_attention_after: 2,
            d_attention_after: 1,
        }
    }
}

/// A validated config, resolved against the data: everything the networks need to be built.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub resolution: i64,
    pub image_channels: i64,
    pub z_dim: i64,
    pub g_channels: i64,
    pub d_channels: i64,
    /// `Some(number of classes)` for a conditional model.
    pub classes: Option<i64>,
    /// The G block (from 1) followed by self-attention, if any.
    pub g_attention_after: Option<i64>,
    /// The D block (from 1) followed by self-attention, if any.
    pub d_attention_after: Option<i64>,
}

impl SaganConfig {
    /// Checks every key and resolves `resolution = 0`, the image channels and the classes.
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        let g_channels = positive("g_channels", self.g_channels)?;
        let d_channels = positive("d_channels", self.d_channels)?;
        let g_attention_after = attention("g_attention_after", self.g_attention_after, G_BLOCKS, g_channels)?;
        let d_attention_after = attention("d_attention_after", self.d_attention_after, D_BLOCKS, d_channels)?;
        Ok(Settings {
            resolution: self.resolution(data)?,
            image_channels: image_channels(data)?,
            z_dim: positive("z_dim", self.z_dim)?,
            g_channels,
            d_channels,
            classes: self.classes(data)?,
            g_attention_after,
            d_attention_after,
        })
    }

    fn resolution(&self, data: &DataSpec) -> lab_plugin_api::Result<i64> {
        let (h, w) = (data.height, data.width);
        let wanted = if self.resolution == 0 { h } else { self.resolution };
        if h != w || !SUPPORTED_RESOLUTIONS.contains(&wanted) {
            let asked = if self.resolution == 0 { String::new() } else { format!(" and `resolution` is {wanted}") };
            return Err(lab_plugin_api::Error::config(
                "resolution",
                format!(
                    "sagan has StudioGAN's CIFAR-10 networks, for 32x32 images only, but the data is {h}x{w}{asked}; \
                     use 32x32 data or another architecture"
                ),
            ));
        }
        if wanted != h {
            return Err(lab_plugin_api::Error::config(
                "resolution",
                format!("{wanted} does not match the data, which is {h}x{w}; set it to 0 to follow the data"),
            ));
        }
        Ok(wanted)
    }

    fn classes(&self, data: &DataSpec) -> lab_plugin_api::Result<Option<i64>> {
        if !self.conditional {
            return Ok(None);
        }
        match data.num_classes {
            n if n > 0 => Ok(Some(n)),
            _ => Err(lab_plugin_api::Error::config(
                "conditional",
                "a conditional sagan needs class labels, but the data has none; set `conditional = false` \
                 or use a labelled dataset",
            )),
        }
    }
}

/// Where attention goes: 0 is none; otherwise a block number from 1 to `blocks`, in a network
/// whose width the block can divide (queries and keys have a width of C/8, values C/2).
fn attention(key: &str, after: i64, blocks: i64, channels: i64) -> lab_plugin_api::Result<Option<i64>> {
    if after == 0 {
        return Ok(None);
    }
    if !(1..=blocks).contains(&after) {
        return Err(lab_plugin_api::Error::config(
            key,
            format!("expected a block number from 1 to {blocks}, or 0 for no attention, found {after}"),
        ));
    }
    if channels % 8 != 0 {
        let width = if key.starts_with('g') { "g_channels" } else { "d_channels" };
        return Err(lab_plugin_api::Error::config(
            key,
            format!(
                "self-attention reads queries and keys of C/8 channels, so `{width}` must be a multiple of 8, \
                 found {channels}; change the width or set `{key} = 0`"
            ),
        ));
    }
    Ok(Some(after))
}

fn image_channels(data: &DataSpec) -> lab_plugin_api::Result<i64> {
    if data.channels > 0 {
        Ok(data.channels)
    } else {
        Err(lab_plugin_api::Error::new(format!(
            "sagan: the data reports {} image channels; expected at least 1",
            data.channels
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(channels: i64, side: i64, num_classes: i64) -> DataSpec {
        DataSpec { channels, height: side, width: side, num_classes }
    }

    #[test]
    fn defaults_are_studiogans_cifar10_sagan() {
        let s = SaganConfig::default().resolve(&data(3, 32, 10)).unwrap();
        assert_eq!((s.resolution, s.image_channels, s.z_dim, s.g_channels, s.d_channels), (32, 3, 128, 256, 128));
        assert_eq!((s.classes, s.g_attention_after, s.d_attention_after), (Some(10), Some(2), Some(1)));
    }

    #[test]
    fn only_32_pixels_are_supported() {
        let err = SaganConfig::default().resolve(&data(1, 28, 10)).unwrap_err().to_string();
        assert_eq!(
            err,
            "key `resolution`: sagan has StudioGAN's CIFAR-10 networks, for 32x32 images only, but the data is \
             28x28; use 32x32 data or another architecture"
        );
    }

    #[test]
    fn conditional_needs_labels_and_unconditional_ignores_them() {
        let err = SaganConfig::default().resolve(&data(3, 32, 0)).unwrap_err().to_string();
        assert!(err.starts_with("key `conditional`: a conditional sagan needs class labels"), "{err}");
        let s = SaganConfig { conditional: false, ..Default::default() }.resolve(&data(3, 32, 10)).unwrap();
        assert_eq!(s.classes, None);
    }

    #[test]
    fn attention_placement_is_checked() {
        let cfg = SaganConfig { g_attention_after: 4, ..Default::default() };
        let err = cfg.resolve(&data(3, 32, 10)).unwrap_err().to_string();
        assert_eq!(err, "key `g_attention_after`: expected a block number from 1 to 3, or 0 for no attention, found 4");
        let cfg = SaganConfig { d_channels: 12, ..Default::default() };
        let err = cfg.resolve(&data(3, 32, 10)).unwrap_err().to_string();
        assert!(err.starts_with("key `d_attention_after`: self-attention reads") && err.contains("found 12"), "{err}");
        let cfg = SaganConfig { d_channels: 12, d_attention_after: 0, g_attention_after: 0, ..Default::default() };
        let s = cfg.resolve(&data(3, 32, 10)).unwrap();
        assert_eq!((s.d_channels, s.g_attention_after, s.d_attention_after), (12, None, None));
    }

    #[test]
    fn unknown_keys_are_refused_through_the_api_parser() {
        let err = lab_plugin_api::config::parse::<SaganConfig>("g_attention = 2").unwrap_err().to_string();
        assert!(err.starts_with("key `g_attention`: not a key of this plugin; did you mean"), "{err}");
        let err = lab_plugin_api::config::parse::<SaganConfig>("g_chanels = 32").unwrap_err().to_string();
        assert!(err.starts_with("key `g_chanels`: not a key of this plugin; did you mean `g_channels`?"), "{err}");
    }
}
