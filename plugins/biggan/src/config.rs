//! The `[model.config]` table of the `biggan` architecture, and its validation against the data.
//!
//! The defaults are the DiffAugment BigGAN-CIFAR scripts' settings (BigGAN-PyTorch's `arch[32]`
//! with `G_ch = D_ch = 64`, `dim_z = 128`, `G_init = D_init = N02`, spectral norm in both
//! networks, `BN_eps = 1e-5`), so `model.architecture = "biggan"` alone reproduces them.
use lab_plugin_api::config::check::positive;
use lab_plugin_api::DataSpec;
use serde::{Deserialize, Serialize};

/// Image sides the block plans cover (BigGAN-PyTorch's `arch[32]`).
pub const SUPPORTED_RESOLUTIONS: [i64; 1] = [32];

/// The values `init` accepts, as users write them.
const INIT_NAMES: [&str; 2] = ["N02", "ortho"];

/// What users write under `[model.config]` for `model.architecture = "biggan"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BigGanConfig {
    /// Generator width multiplier (`G_ch`): every G block has `4 * g_ch` channels at 32×32.
    pub g_ch: i64,
    /// Discriminator width multiplier (`D_ch`): every D block has `4 * d_ch` channels at 32×32.
    pub d_ch: i64,
    /// Length of the latent vector z (`dim_z`).
    pub z_dim: i64,
    /// Image side in pixels; 0 takes it from the data. Supported: 32.
    pub resolution: i64,
    /// Class-conditional: class-conditional batch norm in G, a projection term in D. Needs
    /// labelled data. Unconditional models use plain batch norm and no projection.
    pub conditional: bool,
    /// Spectral norm on G's convolutions and linear layer (`G_param = "SN"`). G's class
    /// embeddings are never normalised, as in BigGAN-PyTorch.
    pub g_sn: bool,
    /// Spectral norm on every D weight, the projection embedding included (`D_param = "SN"`).
    pub d_sn: bool,
    /// Epsilon of the batch norms inside G's blocks (`BN_eps`). The norm before G's output
    /// convolution keeps 1e-5 whatever this says, as in BigGAN-PyTorch, which does not pass
    /// `BN_eps` to it.
    pub bn_eps: f64,
    /// Weight initialisation of every convolution, linear and embedding weight: "N02"
    /// (N(0, 0.02), the DiffAugment scripts') or "ortho" (orthogonal, BigGAN-PyTorch's default).
    pub init: String,
}

impl Default for BigGanConfig {
    fn default() -> Self {
        Self {
            g_ch: 64,
            d_ch: 64,
            z_dim: 128,
            resolution: 0,
            conditional: true,
            g_sn: true,
            d_sn: true,
            bn_eps: 1e-5,
            init: "N02".into(),
        }
    }
}

/// How convolution, linear and embedding weights start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitStyle {
    /// Normal with mean 0 and standard deviation 0.02.
    N02,
    /// A (semi-)orthogonal matrix over the flattened weight, gain 1.
    Ortho,
}

/// A validated config, resolved against the data: everything the networks need to be built.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub resolution: i64,
    pub image_channels: i64,
    pub z_dim: i64,
    pub g_ch: i64,
    pub d_ch: i64,
    /// `Some(number of classes)` for a conditional model.
    pub classes: Option<i64>,
    pub g_sn: bool,
    pub d_sn: bool,
    pub bn_eps: f64,
    pub init: InitStyle,
}

impl BigGanConfig {
    /// Checks every key and resolves `resolution = 0` and the image channels from `data`.
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        Ok(Settings {
            resolution: self.resolution(data)?,
            image_channels: image_channels(data)?,
            z_dim: positive("z_dim", self.z_dim)?,
            g_ch: positive("g_ch", self.g_ch)?,
            d_ch: positive("d_ch", self.d_ch)?,
            classes: self.classes(data)?,
            g_sn: self.g_sn,
            d_sn: self.d_sn,
            bn_eps: self.bn_eps()?,
            init: parse_init(&self.init)?,
        })
    }

    fn resolution(&self, data: &DataSpec) -> lab_plugin_api::Result<i64> {
        let supported = SUPPORTED_RESOLUTIONS.map(|r| r.to_string()).join(", ");
        let (h, w) = (data.height, data.width);
        let wanted = if self.resolution == 0 { h } else { self.resolution };
        if h != w || !SUPPORTED_RESOLUTIONS.contains(&wanted) {
            return Err(lab_plugin_api::Error::config(
                "resolution",
                format!(
                    "biggan has block plans for {supported}x{supported} images only \
                 (BigGAN-PyTorch's arch[32]), but the data is {h}x{w}{}; use 32x32 data or another architecture",
                    if self.resolution == 0 { String::new() } else { format!(" and `resolution` is {wanted}") }
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
        match (self.conditional, data.num_classes) {
            (false, _) => Ok(None),
            (true, n) if n > 0 => Ok(Some(n)),
            (true, _) => Err(lab_plugin_api::Error::config(
                "conditional",
                "a conditional biggan (the default) needs class labels, but the \
                 data has none; set `conditional = false` or use a labelled dataset",
            )),
        }
    }

    fn bn_eps(&self) -> lab_plugin_api::Result<f64> {
        if self.bn_eps > 0.0 && self.bn_eps.is_finite() {
            Ok(self.bn_eps)
        } else {
            Err(lab_plugin_api::Error::config(
                "bn_eps",
                format!("expected a small positive number such as 1e-5, found {}", self.bn_eps),
            ))
        }
    }
}

fn image_channels(data: &DataSpec) -> lab_plugin_api::Result<i64> {
    if data.channels > 0 {
        Ok(data.channels)
    } else {
        Err(lab_plugin_api::Error::new(format!(
            "biggan: the data reports {} image channels; expected at least 1",
            data.channels
        )))
    }
}

fn parse_init(value: &str) -> lab_plugin_api::Result<InitStyle> {
    match value {
        "N02" => Ok(InitStyle::N02),
        "ortho" => Ok(InitStyle::Ortho),
        other => {
            let valid = INIT_NAMES.map(|n| format!("\"{n}\"")).join(", ");
            Err(lab_plugin_api::Error::config("init", format!("unknown value \"{other}\"; valid values: {valid}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(channels: i64, side: i64, num_classes: i64) -> DataSpec {
        DataSpec { channels, height: side, width: side, num_classes }
    }

    #[test]
    fn defaults_are_the_diffaugment_cifar_settings() {
        let s = BigGanConfig::default().resolve(&data(3, 32, 10)).unwrap();
        assert_eq!((s.resolution, s.image_channels, s.z_dim, s.g_ch, s.d_ch), (32, 3, 128, 64, 64));
        assert_eq!((s.classes, s.g_sn, s.d_sn, s.bn_eps, s.init), (Some(10), true, true, 1e-5, InitStyle::N02));
    }

    #[test]
    fn only_32_pixels_are_supported() {
        let err = BigGanConfig::default().resolve(&data(3, 64, 10)).unwrap_err().to_string();
        assert_eq!(
            err,
            "key `resolution`: biggan has block plans for 32x32 images only (BigGAN-PyTorch's arch[32]), \
             but the data is 64x64; use 32x32 data or another architecture"
        );
        let cfg = BigGanConfig { resolution: 64, ..Default::default() };
        assert!(cfg.resolve(&data(3, 32, 10)).unwrap_err().to_string().contains("and `resolution` is 64"));
        let non_square = DataSpec { channels: 3, height: 32, width: 64, num_classes: 10 };
        assert!(BigGanConfig::default().resolve(&non_square).unwrap_err().to_string().contains("the data is 32x64"));
    }

    #[test]
    fn conditional_needs_labels() {
        assert_eq!(
            BigGanConfig::default().resolve(&data(3, 32, 0)).unwrap_err().to_string(),
            "key `conditional`: a conditional biggan (the default) needs class labels, but the data has none; \
             set `conditional = false` or use a labelled dataset"
        );
        let cfg = BigGanConfig { conditional: false, ..Default::default() };
        assert_eq!(cfg.resolve(&data(3, 32, 0)).unwrap().classes, None);
        assert_eq!(cfg.resolve(&data(3, 32, 10)).unwrap().classes, None, "labels are ignored when unconditional");
    }

    #[test]
    fn init_lists_valid_values() {
        let cfg = BigGanConfig { init: "xavier".into(), ..Default::default() };
        assert_eq!(
            cfg.resolve(&data(3, 32, 10)).unwrap_err().to_string(),
            "key `init`: unknown value \"xavier\"; valid values: \"N02\", \"ortho\""
        );
        let cfg = BigGanConfig { init: "ortho".into(), ..Default::default() };
        assert_eq!(cfg.resolve(&data(3, 32, 10)).unwrap().init, InitStyle::Ortho);
    }

    #[test]
    fn sizes_and_eps_must_be_positive() {
        let cfg = BigGanConfig { g_ch: 0, ..Default::default() };
        assert_eq!(
            cfg.resolve(&data(3, 32, 10)).unwrap_err().to_string(),
            "key `g_ch`: expected a positive integer, found 0"
        );
        let cfg = BigGanConfig { bn_eps: 0.0, ..Default::default() };
        assert!(cfg.resolve(&data(3, 32, 10)).unwrap_err().to_string().starts_with("key `bn_eps`"));
    }

    #[test]
    fn unknown_keys_are_refused_through_the_api_parser() {
        let err = lab_plugin_api::config::parse::<BigGanConfig>("g_chan = 32").unwrap_err().to_string();
        assert!(err.starts_with("key `g_chan`: not a key of this plugin; did you mean `g_ch`?"), "{err}");
        let ok = lab_plugin_api::config::parse::<BigGanConfig>("d_sn = false\nbn_eps = 1e-4").unwrap();
        assert_eq!((ok.d_sn, ok.bn_eps, ok.g_ch), (false, 1e-4, 64));
    }
}
