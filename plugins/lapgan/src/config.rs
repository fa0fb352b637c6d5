//! The `[model.config]` table of the `lapgan` architecture, and its validation against the data.
//!
//! The defaults are the paper's and facebook/eyescream's (`train_cifar_coarse_to_fine.lua`):
//! three levels (28 → 14 → 7 on Fashion-MNIST, 32 → 16 → 8 on CIFAR-10), the coarsest a pair of
//! fully connected networks (G 1,200 hidden units, D 600, z of 100), the finer ones convolutional
//! (G and D of 64 channels).
use lab_plugin_api::config::check::{positive, unit_interval};
use lab_plugin_api::{DataSpec, Error};
use serde::{Deserialize, Serialize};

/// What users write under `[model.config]` for `model.architecture = "lapgan"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LapganConfig {
    /// Pyramid levels, the coarsest included; each finer level doubles the side.
    pub levels: i64,
    /// Length of the coarsest level's z, drawn from U(−1, 1).
    pub z_dim: i64,
    /// Hidden units of the coarsest generator's two layers (the paper: 1,200).
    pub g0_hidden: i64,
    /// Hidden units of the coarsest discriminator's two layers (the paper: 600).
    pub d0_hidden: i64,
    /// Channels of the finer levels' generators (`hidden_G`) and discriminators (`hidden_D`).
    pub g_channels: i64,
    pub d_channels: i64,
    /// Dropout before every discriminator's last layer (and between the coarsest one's layers).
    pub d_dropout: f64,
}

impl Default for LapganConfig {
    fn default() -> Self {
        Self { levels: 3, z_dim: 100, g0_hidden: 1200, d0_hidden: 600, g_channels: 64, d_channels: 64, d_dropout: 0.5 }
    }
}

/// A validated config, resolved against the data.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub levels: i64,
    pub z_dim: i64,
    pub g0_hidden: i64,
    pub d0_hidden: i64,
    pub g_channels: i64,
    pub d_channels: i64,
    pub d_dropout: f64,
    pub channels: i64,
    /// The image side at each level, coarsest first (7, 14, 28).
    pub sides: Vec<i64>,
}

impl Settings {
    /// The latent's width: z, then one noise plane per finer level.
    pub fn latent_width(&self) -> i64 {
        self.z_dim + self.sides[1..].iter().map(|s| s * s).sum::<i64>()
    }
}

impl LapganConfig {
    pub fn resolve(&self, data: &DataSpec) -> lab_plugin_api::Result<Settings> {
        let levels = positive("levels", self.levels)?;
        let (h, w) = (data.height, data.width);
        let divisor = 1 << (levels - 1);
        if h != w || h % divisor != 0 || h / divisor < 2 {
            return Err(Error::config(
                "levels",
                format!(
                    "{levels} levels halve a square image {} times, but the data is {h}x{w}; use square images \
                     whose side divides by {divisor} (28 and 32 take 3 levels), or fewer levels",
                    levels - 1
                ),
            ));
        }
        let sides = (0..levels).map(|k| h / (1 << (levels - 1 - k))).collect();
        Ok(Settings {
            levels,
            z_dim: positive("z_dim", self.z_dim)?,
            g0_hidden: positive("g0_hidden", self.g0_hidden)?,
            d0_hidden: positive("d0_hidden", self.d0_hidden)?,
            g_channels: positive("g_channels", self.g_channels)?,
            d_channels: positive("d_channels", self.d_channels)?,
            d_dropout: unit_interval("d_dropout", self.d_dropout)?,
            channels: data.channels.max(1),
            sides,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_halve_the_side() {
        let data = |side| DataSpec { channels: 1, height: side, width: side, num_classes: 10 };
        let s = LapganConfig::default().resolve(&data(28)).unwrap();
        assert_eq!(s.sides, [7, 14, 28]);
        assert_eq!(s.latent_width(), 100 + 196 + 784);
        assert_eq!(LapganConfig::default().resolve(&data(32)).unwrap().sides, [8, 16, 32]);
        let err = LapganConfig { levels: 4, ..Default::default() }.resolve(&data(28)).unwrap_err().to_string();
        assert_eq!(
            err,
            "key `levels`: 4 levels halve a square image 3 times, but the data is 28x28; use square images whose \
             side divides by 8 (28 and 32 take 3 levels), or fewer levels"
        );
    }
}
