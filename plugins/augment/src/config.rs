//! The `[augment.config]` table of the `augment` plugin.
use serde::{Deserialize, Serialize};
use toml::Value;

use crate::ops::{Op, Padding, Pipeline, Step};

/// `augment.name = "augment"`'s config.
///
/// ```toml
/// [augment.config]
/// pipeline = [{ op = "hflip", p = 0.5 }, { op = "rotate", p = 0.3, degrees = 15.0 }]
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// The operations in order: tables `{ op = "...", p = 1.0, ...parameters }` (or bare op
    /// names), validated by [`AugmentConfig::pipeline`]. Empty means no augmentation. The
    /// operations and their parameters are listed in [`crate::ops::op`].
    pub pipeline: Vec<Value>,
}

impl Default for AugmentConfig {
    /// Flips half the images and shifts half by up to ±1/8 of their size: the mildest useful
    /// pipeline, and an example of the format in `lab plugins`.
    fn default() -> Self {
        let steps =
            [Step::new(Op::Hflip, 0.5), Step::new(Op::Translate { ratio: 0.125, padding: Padding::Zeros }, 0.5)];
        Self { pipeline: crate::ops::spec::to_toml(&steps) }
    }
}

impl AugmentConfig {
    /// The validated pipeline; errors name the entry and key (`pipeline[1].degrees`).
    pub fn pipeline(&self) -> lab_plugin_api::Result<Pipeline> {
        Pipeline::from_toml("pipeline", &self.pipeline)
    }
}
