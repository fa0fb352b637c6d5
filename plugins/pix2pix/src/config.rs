//! The `[model.config]` table of the `pix2pix` architecture, and its resolution against the
//! data: the U-Net's depth comes from the image size, the channels of A and B from the data.
use lab_nn::Norm;
use lab_plugin_api::config::check::{non_negative, positive};
use lab_plugin_api::{DataSpec, Error, Result};
use serde::{Deserialize, Serialize};

/// The smallest image side: three halvings down to a 1×1 bottleneck.
pub const MIN_SIZE: i64 = 8;
/// Encoder blocks whose 8·ngf channels are neither the widening ones (ngf, 2·ngf, 4·ngf, the
/// first 8·ngf) nor the innermost: the official recursion puts dropout in exactly those, so a
/// U-Net with `depth` downsamplings has `depth − 5` dropout blocks when that is positive.
pub const BLOCKS_BEFORE_DROPOUT: i64 = 4;

/// What users write under `[model.config]` for `model.architecture = "pix2pix"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pix2pixConfig {
    /// Width of G's first encoder layer; deeper ones double it up to 8·ngf (64 in the paper).
    pub ngf: i64,
    /// Width of D's first layer; deeper ones double it up to 8·ndf (64 in the paper).
    pub ndf: i64,
    /// `"batch"` (the paper's) or `"instance"` normalisation, in G and D.
    pub norm: Norm,
    /// Dropout probability in G's 8·ngf decoder blocks just above the innermost one (0.5 in the
    /// paper); 0 turns dropout off.
    pub dropout: f64,
    /// D's stride-2 layers: 3 is the 70×70 PatchGAN, 1 the 16×16, 2 the 34×34.
    pub d_layers: i64,
    /// Run G at evaluation (grids, measures) as in training, the paper's test protocol: dropout
    /// stays on as the noise source and batch norm uses the test batch's own statistics (the
    /// running ones are left as they are). `false`: no dropout, running statistics.
    pub noise_at_test: bool,
    /// Image pairs of the reference split `evaluate` translates; 0 means all of them.
    pub eval_images: i64,
    /// A TorchScript feature network (uint8 NCHW in, features out with `forward(images, true)`,
    /// as `lab features train` writes): with it, `evaluate` adds `translation/fid`, G(A) against
    /// the targets B in its features, the realism that per-pixel measures do not see. "": none.
    pub features: String,
}

impl Default for Pix2pixConfig {
    fn default() -> Self {
        Self {
            ngf: 64,
            ndf: 64,
            norm: Norm::Batch,
            dropout: 0.5,
            d_layers: 3,
            noise_at_test: true,
            eval_images: 0,
            features: String::new(),
        }
    }
}

/// A validated config, resolved against the data: what the networks are built from.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub ngf: i64,
    pub ndf: i64,
    pub norm: Norm,
    pub dropout: f64,
    pub d_layers: i64,
    pub noise_at_test: bool,
    pub eval_images: i64,
    pub features: String,
    /// Channels of A and of B (the same: the paired data stores both in one image).
    pub channels: i64,
    /// The images' side.
    pub size: i64,
    /// G's downsamplings, log2(size): 8 at 256×256 (the official `unet_256`), 5 at 32×32.
    pub depth: i64,
}

impl Settings {
    /// Channels of encoder block k's output (k = 0 is the outermost): ngf·2^k up to 8·ngf.
    pub fn encoder_width(&self, k: i64) -> i64 {
        self.ngf * (1i64 << k.min(3))
    }

    /// Whether decoder block k (same numbering) ends in dropout: the 8·ngf blocks strictly
    /// between the first 8·ngf block and the innermost, as the official recursion builds them
    /// (three at 256×256, none at 32×32). With `dropout = 0` none does.
    pub fn has_dropout(&self, k: i64) -> bool {
        self.dropout > 0.0 && k >= BLOCKS_BEFORE_DROPOUT && k < self.depth - 1
    }

    /// Decoder blocks with dropout.
    pub fn dropout_blocks(&self) -> i64 {
        (0..self.depth).filter(|&k| self.has_dropout(k)).count() as i64
    }

    /// D's input channels: A and B stacked.
    pub fn d_in_channels(&self) -> i64 {
        2 * self.channels
    }
}

impl Pix2pixConfig {
    /// Checks every key against the data's shape.
    pub fn resolve(&self, data: &DataSpec) -> Result<Settings> {
        let size = data.height;
        if data.width != size || size < MIN_SIZE || !(size as u64).is_power_of_two() {
            return Err(Error::config(
                "data.image_size",
                format!(
                    "pix2pix's U-Net halves the image down to 1×1, so it needs square images whose side is a power \
                     of two of at least {MIN_SIZE} (the paper's 256, the stand-in data's 32); the data is {}×{}. \
                     Set `data.image_size` to such a size",
                    data.height, data.width
                ),
            ));
        }
        if data.channels < 1 {
            return Err(Error::new(format!(
                "pix2pix: the data reports {} image channels; expected at least 1",
                data.channels
            )));
        }
        let d_layers = positive("d_layers", self.d_layers)?;
        // After d_layers halvings, two 4×4 stride-1 layers with padding 1 each take a pixel off.
        let max_layers = (size / 3).ilog2() as i64;
        if d_layers > max_layers {
            return Err(Error::config(
                "d_layers",
                format!(
                    "{d_layers} stride-2 layers leave a {size}-pixel image {} pixel(s) wide, too small for the two \
                     4×4 layers after them; use at most {max_layers} at this size",
                    size >> d_layers
                ),
            ));
        }
        let dropout = non_negative("dropout", self.dropout, "no dropout")?;
        if dropout >= 1.0 {
            return Err(Error::config("dropout", format!("a dropout probability must be below 1, found {dropout}")));
        }
        if self.eval_images < 0 {
            return Err(Error::config(
                "eval_images",
                format!("must be 0 (all) or a count, found {}", self.eval_images),
            ));
        }
        Ok(Settings {
            ngf: positive("ngf", self.ngf)?,
            ndf: positive("ndf", self.ndf)?,
            norm: self.norm,
            dropout,
            d_layers,
            noise_at_test: self.noise_at_test,
            eval_images: self.eval_images,
            features: self.features.clone(),
            channels: data.channels,
            size,
            depth: size.ilog2() as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(channels: i64, side: i64) -> DataSpec {
        DataSpec { channels, height: side, width: side, num_classes: 0 }
    }

    #[test]
    fn defaults_are_the_papers_and_the_depth_follows_the_size() {
        let s = Pix2pixConfig::default().resolve(&data(3, 256)).unwrap();
        assert_eq!((s.ngf, s.ndf, s.norm, s.dropout, s.d_layers, s.noise_at_test), (64, 64, Norm::Batch, 0.5, 3, true));
        assert_eq!((s.depth, s.dropout_blocks(), s.d_in_channels()), (8, 3, 6));
        assert_eq!((0..8).map(|k| s.encoder_width(k)).collect::<Vec<_>>(), [64, 128, 256, 512, 512, 512, 512, 512]);
        assert_eq!((0..8).filter(|&k| s.has_dropout(k)).collect::<Vec<_>>(), [4, 5, 6]);
        let s = Pix2pixConfig::default().resolve(&data(1, 32)).unwrap();
        assert_eq!((s.depth, s.dropout_blocks()), (5, 0), "the official recursion has no dropout block at 5 levels");
        let s = Pix2pixConfig::default().resolve(&data(1, 128)).unwrap();
        assert_eq!((s.depth, s.dropout_blocks()), (7, 2), "unet_128");
        let s = Pix2pixConfig { dropout: 0.0, ..Default::default() }.resolve(&data(3, 256)).unwrap();
        assert_eq!(s.dropout_blocks(), 0);
    }

    #[test]
    fn sizes_must_be_powers_of_two_of_at_least_8() {
        for (h, w) in [(24, 24), (4, 4), (32, 16)] {
            let spec = DataSpec { channels: 1, height: h, width: w, num_classes: 0 };
            let err = Pix2pixConfig { d_layers: 1, ..Default::default() }.resolve(&spec).unwrap_err().to_string();
            assert!(err.starts_with("key `data.image_size`") && err.contains(&format!("{h}×{w}")), "{err}");
        }
        assert!(Pix2pixConfig { d_layers: 1, ..Default::default() }.resolve(&data(1, 8)).is_ok());
    }

    #[test]
    fn keys_are_checked() {
        let err = Pix2pixConfig::default().resolve(&data(1, 16)).unwrap_err().to_string();
        assert!(err.starts_with("key `d_layers`") && err.contains("at most 2"), "{err}");
        let err = Pix2pixConfig { dropout: 1.0, ..Default::default() }.resolve(&data(1, 32)).unwrap_err().to_string();
        assert!(err.starts_with("key `dropout`"), "{err}");
        let err = Pix2pixConfig { ngf: 0, ..Default::default() }.resolve(&data(1, 32)).unwrap_err().to_string();
        assert!(err.starts_with("key `ngf`"), "{err}");
        let err = lab_plugin_api::config::parse::<Pix2pixConfig>("norm = \"group\"").unwrap_err().to_string();
        assert!(err.contains("batch") && err.contains("instance"), "{err}");
        let err = lab_plugin_api::config::parse::<Pix2pixConfig>("lambda_l1 = 10.0").unwrap_err().to_string();
        assert!(err.starts_with("key `lambda_l1`: not a key of this plugin"), "{err}");
    }
}
