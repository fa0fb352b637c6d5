//! The `[model.config]` table of the `dcgan` architecture, and its validation against the data.
use lab_plugin_api::config::check::positive;
use lab_plugin_api::DataSpec;
use serde::{Deserialize, Serialize};

/// Image sides the networks know how to reach: 7→14→28, or 4→8→…→32 / 64.
pub const SUPPORTED_RESOLUTIONS: [i64; 3] = [28, 32, 64];

/// What users write under `[model.config]` for `model.architecture = "dcgan"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DcganConfig {
    /// Image side in pixels; 0 takes it from the data. Supported: 28, 32, 64.
    pub resolution: i64,
    /// Length of the latent vector z.
    pub z_dim: i64,
    /// Width of the generator: its last hidden layer has this many channels (×2 at 28 and 32).
    pub g_channels: i64,
    /// Width of the discriminator: its first layer has this many channels (×2 at 28 and 32).
    pub d_channels: i64,
    /// Normalisation in the generator: "batch" or "none".
    pub g_norm: String,
    /// Normalisation in the discriminator: "batch" (every layer but the first, as in the
    /// paper), "spectral" (every weight, including the first and last layers and the projection
    /// embedding, as in SNGAN) or "none".
    pub d_norm: String,
    /// Class-conditional: G gets a label embedding, D a projection term. Needs labelled data.
    pub conditional: bool,
}

impl Default for DcganConfig {
    fn default() -> Self {
        Self {
            resolution: 0,
            z_dim: 100,
            g_channels: 64,
            d_channels: 64,
            g_norm: "batch".into(),
            d_norm: "batch".into(),
            conditional: false,
        }
    }
}

/// Normalisation in the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GNorm {
    Batch,
    None,
}

/// Normalisation in the discriminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DNorm {
    Batch,
    /// Every weight divided by its largest singular value (Miyato et al., 2018).
    Spectral,
    None,
}

/// A validated config, resolved against the data: everything the networks need to be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub resolution: i64,
    pub image_channels: i64,
    pub z_dim: i64,
    pub g_channels: i64,
    pub d_channels: i64,
    pub g_norm: GNorm,
    pub d_norm: DNorm,
    /// `Some(number of classes)` for a conditional model.
    pub classes: Option<i64>,
}

impl DcganConfig {
    /// Checks every key and resolves `resolution = 0` and the channel count from `data`.
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        Ok(Settings {
            resolution: self.resolution(data)?,
            image_channels: image_channels(data)?,
            z_dim: positive("z_dim", self.z_dim)?,
            g_channels: positive("g_channels", self.g_channels)?,
            d_channels: positive("d_channels", self.d_channels)?,
            g_norm: parse_g_norm(&self.g_norm)?,
            d_norm: parse_d_norm(&self.d_norm)?,
            classes: self.classes(data)?,
        })
    }

    fn resolution(&self, data: &DataSpec) -> lab_plugin_api::Result<i64> {
        let supported = supported_list();
        let (h, w) = (data.height, data.width);
        if h != w {
            return Err(lab_plugin_api::Error::config(
                "resolution",
                format!("dcgan needs square images, but the data is {h}x{w}; supported sizes: {supported}"),
            ));
        }
        let wanted = if self.resolution == 0 { h } else { self.resolution };
        if !SUPPORTED_RESOLUTIONS.contains(&wanted) {
            return Err(lab_plugin_api::Error::config(
                "resolution",
                format!("{wanted} is not supported (the data is {h}x{w}); supported sizes: {supported}"),
            ));
        }
        if wanted != h {
            return Err(lab_plugin_api::Error::config(
                "resolution",
                format!(
                    "{wanted} does not match the data, which is {h}x{w}; set it to 0 to follow \
                 the data (supported sizes: {supported})"
                ),
            ));
        }
        Ok(wanted)
    }

    fn classes(&self, data: &DataSpec) -> lab_plugin_api::Result<Option<i64>> {
        match (self.conditional, data.num_classes) {
            (false, _) => Ok(None),
            (true, n) if n > 0 => Ok(Some(n)),
            (true, _) => Err(lab_plugin_api::Error::config(
                "conditional",
                "a conditional dcgan needs class labels, but the data has none; \
                 set `conditional = false` or use a labelled dataset",
            )),
        }
    }
}

fn supported_list() -> String {
    SUPPORTED_RESOLUTIONS.map(|r| r.to_string()).join(", ")
}

fn image_channels(data: &DataSpec) -> lab_plugin_api::Result<i64> {
    if data.channels > 0 {
        Ok(data.channels)
    } else {
        Err(lab_plugin_api::Error::new(format!(
            "dcgan: the data reports {} image channels; expected at least 1",
            data.channels
        )))
    }
}

fn parse_g_norm(value: &str) -> lab_plugin_api::Result<GNorm> {
    match value {
        "batch" => Ok(GNorm::Batch),
        "none" => Ok(GNorm::None),
        other => Err(lab_plugin_api::Error::config(
            "g_norm",
            format!("unknown value \"{other}\"; valid values: \"batch\", \"none\""),
        )),
    }
}

fn parse_d_norm(value: &str) -> lab_plugin_api::Result<DNorm> {
    match value {
        "batch" => Ok(DNorm::Batch),
        "spectral" => Ok(DNorm::Spectral),
        "none" => Ok(DNorm::None),
        other => Err(lab_plugin_api::Error::config(
            "d_norm",
            format!("unknown value \"{other}\"; valid values: \"batch\", \"spectral\", \"none\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(channels: i64, side: i64, num_classes: i64) -> DataSpec {
        DataSpec { channels, height: side, width: side, num_classes }
    }

    #[test]
    fn zero_resolution_follows_the_data() {
        let s = DcganConfig::default().resolve(&data(1, 28, 10)).unwrap();
        assert_eq!((s.resolution, s.image_channels, s.classes), (28, 1, None));
    }

    #[test]
    fn unsupported_resolution_is_refused() {
        let err = DcganConfig::default().resolve(&data(3, 48, 0)).unwrap_err().to_string();
        assert_eq!(err, "key `resolution`: 48 is not supported (the data is 48x48); supported sizes: 28, 32, 64");
    }

    #[test]
    fn resolution_must_match_the_data() {
        let cfg = DcganConfig { resolution: 64, ..Default::default() };
        let err = cfg.resolve(&data(3, 32, 0)).unwrap_err().to_string();
        assert_eq!(
            err,
            "key `resolution`: 64 does not match the data, which is 32x32; set it to 0 to follow the data \
             (supported sizes: 28, 32, 64)"
        );
    }

    #[test]
    fn non_square_data_is_refused() {
        let err = DcganConfig::default().resolve(&DataSpec { channels: 3, height: 32, width: 64, num_classes: 0 });
        assert_eq!(
            err.unwrap_err().to_string(),
            "key `resolution`: dcgan needs square images, but the data is 32x64; supported sizes: 28, 32, 64"
        );
    }

    #[test]
    fn norms_list_valid_values() {
        let cfg = DcganConfig { g_norm: "layer".into(), ..Default::default() };
        assert_eq!(
            cfg.resolve(&data(3, 32, 0)).unwrap_err().to_string(),
            "key `g_norm`: unknown value \"layer\"; valid values: \"batch\", \"none\""
        );
        let cfg = DcganConfig { d_norm: "sn".into(), ..Default::default() };
        assert_eq!(
            cfg.resolve(&data(3, 32, 0)).unwrap_err().to_string(),
            "key `d_norm`: unknown value \"sn\"; valid values: \"batch\", \"spectral\", \"none\""
        );
    }

    #[test]
    fn conditional_needs_labels() {
        let cfg = DcganConfig { conditional: true, ..Default::default() };
        assert_eq!(
            cfg.resolve(&data(3, 32, 0)).unwrap_err().to_string(),
            "key `conditional`: a conditional dcgan needs class labels, but the data has none; \
             set `conditional = false` or use a labelled dataset"
        );
        assert_eq!(cfg.resolve(&data(3, 32, 10)).unwrap().classes, Some(10));
    }

    #[test]
    fn sizes_must_be_positive() {
        let cfg = DcganConfig { z_dim: 0, ..Default::default() };
        assert_eq!(
            cfg.resolve(&data(3, 32, 0)).unwrap_err().to_string(),
            "key `z_dim`: expected a positive integer, found 0"
        );
    }

    #[test]
    fn unknown_keys_are_refused_through_the_api_parser() {
        let err = lab_plugin_api::config::parse::<DcganConfig>("z_dimm = 128").unwrap_err().to_string();
        assert!(err.starts_with("key `z_dimm`: not a key of this plugin; did you mean `z_dim`?"), "{err}");
    }
}
