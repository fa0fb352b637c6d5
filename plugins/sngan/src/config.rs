//! The `[model.config]` table of the `sngan` architecture, and its validation against the data.
//!
//! The defaults are the official unconditional CIFAR-10 run (pfnet-research/sngan_projection,
//! `configs/sn_cifar10_unconditional.yml`): the ResNet of the paper's Table 4 with 256 channels
//! in G and 128 in D, z of 128, spectral norm on every D weight, chainer's batch-norm epsilon.
//! `kind = "cnn"` is the standard CNN of Table 3.
use lab_plugin_api::config::check::{non_negative, one_of, positive};
use lab_plugin_api::DataSpec;
use serde::{Deserialize, Serialize};

/// Image sides the networks are defined for (the paper's CIFAR-10 tables, M = 32).
pub const SUPPORTED_RESOLUTIONS: [i64; 1] = [32];

/// The values `kind` accepts.
const KINDS: [&str; 2] = ["resnet", "cnn"];
/// The values `pooling` accepts.
const POOLINGS: [&str; 2] = ["sum", "mean"];

/// What users write under `[model.config]` for `model.architecture = "sngan"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnganConfig {
    /// "resnet" (the paper's Table 4) or "cnn" (the standard CNN of Table 3).
    pub kind: String,
    /// Width of G: the channels of its widest feature map. ResNet: every block (paper and
    /// official code: 256). CNN: the first map, halved by each of the three up-blocks (512).
    /// 0 takes the paper's width for `kind`.
    pub g_channels: i64,
    /// Width of D: the channels of its widest feature map. ResNet: every block (128). CNN: the
    /// last convolution, reached by doubling from an eighth of it (64 → 512). 0 takes the
    /// paper's width for `kind`.
    pub d_channels: i64,
    /// Length of the latent vector z, drawn from N(0, I).
    pub z_dim: i64,
    /// Image side in pixels; 0 takes it from the data. Supported: 32.
    pub resolution: i64,
    /// Class-conditional (StudioGAN's SNGAN, and the official `sn_cifar10.yml`): class-conditional
    /// batch norm in G's blocks and a projection term in D. ResNet only; needs labelled data.
    pub conditional: bool,
    /// Spectral norm on every D weight (the projection embedding included). Off gives the same
    /// networks without it, WGAN-GP's ResNet critic.
    pub d_sn: bool,
    /// Epsilon of every batch norm in G (chainer's `BatchNormalization` default, 2e-5).
    pub bn_eps: f64,
    /// Negative slope of the CNN discriminator's LeakyReLUs (the paper's 0.1). CNN only.
    pub leaky_slope: f64,
    /// How the ResNet discriminator pools its last feature map: "sum" (SNGAN's global sum
    /// pooling) or "mean" (WGAN-GP's ResNet critic). ResNet only.
    pub pooling: String,
}

impl Default for SnganConfig {
    fn default() -> Self {
        Self {
            kind: "resnet".into(),
            g_channels: 0,
            d_channels: 0,
            z_dim: 128,
            resolution: 0,
            conditional: false,
            d_sn: true,
            bn_eps: 2e-5,
            leaky_slope: 0.1,
            pooling: "sum".into(),
        }
    }
}

/// Which of the paper's two CIFAR-10 architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Table 4: residual G with upsampling blocks, residual D with sum pooling.
    ResNet,
    /// Table 3: transposed convolutions in G, a plain stack of convolutions with LeakyReLU and a
    /// dense layer in D.
    Cnn,
}

impl Kind {
    /// The paper's widths for CIFAR-10: `(G, D)` channels of the widest feature map.
    pub fn paper_widths(self) -> (i64, i64) {
        match self {
            Kind::ResNet => (256, 128),
            Kind::Cnn => (512, 512),
        }
    }
}

/// How the ResNet discriminator reduces its last feature map to one vector per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Sum,
    Mean,
}

/// A validated config, resolved against the data: everything the networks need to be built.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub kind: Kind,
    pub resolution: i64,
    pub image_channels: i64,
    pub z_dim: i64,
    pub g_channels: i64,
    pub d_channels: i64,
    /// `Some(number of classes)` for a conditional model.
    pub classes: Option<i64>,
    pub d_sn: bool,
    pub bn_eps: f64,
    pub leaky_slope: f64,
    pub pooling: Pooling,
}

impl SnganConfig {
    /// Checks every key and resolves the widths, `resolution = 0` and the image channels.
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        let kind = match one_of("kind", &self.kind, &KINDS)? {
            "resnet" => Kind::ResNet,
            _ => Kind::Cnn,
        };
        let defaults = Self::default();
        // A key that only the other kind reads would be silently ignored: refuse it instead.
        if kind == Kind::Cnn && self.pooling != defaults.pooling {
            return Err(lab_plugin_api::Error::config(
                "pooling",
                "only the resnet discriminator pools; the cnn one ends in a dense layer over its last map",
            ));
        }
        if kind == Kind::ResNet && self.leaky_slope != defaults.leaky_slope {
            return Err(lab_plugin_api::Error::config(
                "leaky_slope",
                "only the cnn discriminator uses LeakyReLU; the resnet one uses ReLU",
            ));
        }
        let pooling = match one_of("pooling", &self.pooling, &POOLINGS)? {
            "sum" => Pooling::Sum,
            _ => Pooling::Mean,
        };
        let (paper_g, paper_d) = kind.paper_widths();
        Ok(Settings {
            kind,
            resolution: self.resolution(data)?,
            image_channels: image_channels(data)?,
            z_dim: positive("z_dim", self.z_dim)?,
            g_channels: width("g_channels", self.g_channels, paper_g, kind)?,
            d_channels: width("d_channels", self.d_channels, paper_d, kind)?,
            classes: self.classes(kind, data)?,
            d_sn: self.d_sn,
            bn_eps: self.bn_eps()?,
            leaky_slope: non_negative("leaky_slope", self.leaky_slope, "0 is a ReLU")?,
            pooling,
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
                    "sngan has the paper's CIFAR-10 networks, for 32x32 images only, but the data is {h}x{w}{asked}; \
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

    fn classes(&self, kind: Kind, data: &DataSpec) -> lab_plugin_api::Result<Option<i64>> {
        if !self.conditional {
            return Ok(None);
        }
        if kind != Kind::ResNet {
            return Err(lab_plugin_api::Error::config(
                "conditional",
                "a conditional sngan is the ResNet (StudioGAN's configuration: conditional batch norm in G, \
                 projection in D); set `kind = \"resnet\"` or `conditional = false`",
            ));
        }
        match data.num_classes {
            n if n > 0 => Ok(Some(n)),
            _ => Err(lab_plugin_api::Error::config(
                "conditional",
                "a conditional sngan needs class labels, but the data has none; set `conditional = false` \
                 or use a labelled dataset",
            )),
        }
    }

    fn bn_eps(&self) -> lab_plugin_api::Result<f64> {
        if self.bn_eps > 0.0 && self.bn_eps.is_finite() {
            Ok(self.bn_eps)
        } else {
            Err(lab_plugin_api::Error::config(
                "bn_eps",
                format!("expected a small positive number such as 2e-5, found {}", self.bn_eps),
            ))
        }
    }
}

/// A width: 0 is the paper's; the CNN halves (G) or doubles (D) it three times, so it must be a
/// multiple of 8.
fn width(key: &str, value: i64, paper: i64, kind: Kind) -> lab_plugin_api::Result<i64> {
    if value == 0 {
        return Ok(paper);
    }
    let value = positive(key, value)?;
    if kind == Kind::Cnn && value % 8 != 0 {
        return Err(lab_plugin_api::Error::config(
            key,
            format!(
                "the cnn networks take a width of their widest map and use an eighth of it at the other end, \
                 so it must be a multiple of 8, found {value} (the paper's: {paper})"
            ),
        ));
    }
    Ok(value)
}

fn image_channels(data: &DataSpec) -> lab_plugin_api::Result<i64> {
    if data.channels > 0 {
        Ok(data.channels)
    } else {
        Err(lab_plugin_api::Error::new(format!(
            "sngan: the data reports {} image channels; expected at least 1",
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

    fn cnn() -> SnganConfig {
        SnganConfig { kind: "cnn".into(), ..Default::default() }
    }

    #[test]
    fn defaults_are_the_official_unconditional_resnet() {
        let s = SnganConfig::default().resolve(&data(3, 32, 10)).unwrap();
        assert_eq!((s.kind, s.resolution, s.image_channels, s.z_dim), (Kind::ResNet, 32, 3, 128));
        assert_eq!((s.g_channels, s.d_channels, s.classes, s.d_sn), (256, 128, None, true));
        assert_eq!((s.bn_eps, s.pooling), (2e-5, Pooling::Sum));
        let s = cnn().resolve(&data(3, 32, 10)).unwrap();
        assert_eq!((s.kind, s.g_channels, s.d_channels, s.leaky_slope), (Kind::Cnn, 512, 512, 0.1));
    }

    #[test]
    fn only_32_pixels_are_supported() {
        let err = SnganConfig::default().resolve(&data(1, 28, 10)).unwrap_err().to_string();
        assert_eq!(
            err,
            "key `resolution`: sngan has the paper's CIFAR-10 networks, for 32x32 images only, but the data is 28x28; \
             use 32x32 data or another architecture"
        );
        let cfg = SnganConfig { resolution: 48, ..Default::default() };
        assert!(cfg.resolve(&data(3, 32, 10)).unwrap_err().to_string().contains("and `resolution` is 48"));
    }

    #[test]
    fn conditional_is_the_labelled_resnet() {
        let cfg = SnganConfig { conditional: true, ..Default::default() };
        assert_eq!(cfg.resolve(&data(3, 32, 10)).unwrap().classes, Some(10));
        assert!(cfg.resolve(&data(3, 32, 0)).unwrap_err().to_string().contains("needs class labels"));
        let err = SnganConfig { conditional: true, ..cnn() }.resolve(&data(3, 32, 10)).unwrap_err().to_string();
        assert!(err.starts_with("key `conditional`: a conditional sngan is the ResNet"), "{err}");
    }

    #[test]
    fn widths_default_to_the_papers_and_cnn_widths_divide_by_8() {
        let cfg = SnganConfig { g_channels: 8, d_channels: 4, ..Default::default() };
        let s = cfg.resolve(&data(3, 32, 0)).unwrap();
        assert_eq!((s.g_channels, s.d_channels), (8, 4));
        let err = SnganConfig { d_channels: 12, ..cnn() }.resolve(&data(3, 32, 0)).unwrap_err().to_string();
        assert!(err.starts_with("key `d_channels`: the cnn networks") && err.contains("found 12"), "{err}");
        let err = SnganConfig { g_channels: -8, ..cnn() }.resolve(&data(3, 32, 0)).unwrap_err().to_string();
        assert_eq!(err, "key `g_channels`: expected a positive integer, found -8");
    }

    #[test]
    fn keys_of_the_other_kind_are_refused_not_ignored() {
        let err = SnganConfig { pooling: "mean".into(), ..cnn() }.resolve(&data(3, 32, 0)).unwrap_err();
        assert!(err.to_string().starts_with("key `pooling`: only the resnet"));
        let err = SnganConfig { leaky_slope: 0.2, ..Default::default() }.resolve(&data(3, 32, 0)).unwrap_err();
        assert!(err.to_string().starts_with("key `leaky_slope`: only the cnn"));
        let s = SnganConfig { pooling: "mean".into(), ..Default::default() }.resolve(&data(3, 32, 0)).unwrap();
        assert_eq!(s.pooling, Pooling::Mean);
        let err = SnganConfig { kind: "resent".into(), ..Default::default() }.resolve(&data(3, 32, 0)).unwrap_err();
        assert_eq!(err.to_string(), "key `kind`: expected resnet or cnn, found \"resent\" (did you mean `resnet`?)");
    }

    #[test]
    fn unknown_keys_are_refused_through_the_api_parser() {
        let err = lab_plugin_api::config::parse::<SnganConfig>("g_chanels = 32").unwrap_err().to_string();
        assert!(err.starts_with("key `g_chanels`: not a key of this plugin; did you mean `g_channels`?"), "{err}");
        let ok = lab_plugin_api::config::parse::<SnganConfig>("kind = \"cnn\"\nd_sn = false").unwrap();
        assert_eq!((ok.kind.as_str(), ok.d_sn, ok.z_dim), ("cnn", false, 128));
    }
}
