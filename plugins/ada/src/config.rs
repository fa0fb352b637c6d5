//! The `[augment.config]` table of the `ada` plugin.
use serde::{Deserialize, Serialize};
use toml::Value;

use lab_augment_ops::{spec, Op, Padding, Pipeline, Step};

/// `augment.name = "ada"`'s config. The defaults are the paper's (target 0.6, p able to go from 0
/// to 1 in 500k images, adjusted every 4 D steps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaConfig {
    /// The overfitting heuristic's target: p rises while r_t = E[sign D(x_real)] exceeds it
    /// and falls while r_t is below it.
    pub target: f64,
    /// The adjustment speed: p can move by at most 1 in this many thousand real images.
    pub adjust_kimg: f64,
    /// Adjust p every this many D steps (feedback calls), from their accumulated r_t.
    pub interval: i64,
    /// Real images per D step, for the adjustment size; 0 counts them from D's outputs (their
    /// first dimension), which is exact unless D returns several logits per image along it.
    pub batch_size: i64,
    /// p at the start of training (a resumed run restores its own).
    pub initial_p: f64,
    /// The operations applied, each to every sample with probability p × its own `p`, in the
    /// format of the `augment` plugin's `pipeline`. The default is a reduced version of the
    /// paper's `bgc` set; see [`default_policy`].
    pub policy: Vec<Value>,
}

impl Default for AdaConfig {
    fn default() -> Self {
        Self {
            target: 0.6,
            adjust_kimg: 500.0,
            interval: 4,
            batch_size: 0,
            initial_p: 0.0,
            policy: spec::to_toml(&default_policy()),
        }
    }
}

/// A reduced version of ADA's `bgc` policy (blits, general geometric, colour), in the paper's
/// order. Blits and geometry read outside the image by reflection, as ADA does, so padding adds
/// no tell-tale edges, and the four warps are resampled once, together. Each step's own `p`
/// reproduces ADA's probabilities where its draws include the identity: a flip happens with
/// probability p/2, a non-zero quarter turn with 3p/4.
///
/// Simplified relative to the paper: parameters are drawn from uniform or log-uniform ranges
/// with about ADA's spread, instead of its (log-)normal distributions; rotation is applied once
/// rather than as two half-probability rotations around the stretch; the colour transforms are
/// DiffAugment's (saturation about each pixel's channel mean rather than the luma axis), and
/// luma flips and hue rotations are left out.
pub fn default_policy() -> Vec<Step> {
    let padding = Padding::Reflection;
    vec![
        Step::new(Op::Hflip, 0.5),
        Step::new(Op::Rotate90, 0.75),
        Step::new(Op::Translate { ratio: 0.125, padding }, 1.0),
        // log₂-uniform in ±0.32: standard deviation 0.19, ADA's lognormal has 0.2.
        Step::new(Op::Scale { min: 0.8, max: 1.25, padding }, 1.0),
        Step::new(Op::Rotate { degrees: 180.0, padding }, 1.0),
        Step::new(Op::Aniso { min: 0.8, max: 1.25, padding }, 1.0),
        Step::new(Op::SubpixelTranslate { ratio: 0.125, padding }, 1.0),
        // U(−0.35, 0.35) has ADA's standard deviation of 0.2.
        Step::new(Op::Brightness { max: 0.35 }, 1.0),
        Step::new(Op::Contrast { min: 0.5, max: 1.5 }, 1.0),
        Step::new(Op::Saturation { min: 0.0, max: 2.0 }, 1.0),
    ]
}

impl AdaConfig {
    /// Checks every key's range, naming the key and what it accepts.
    pub fn validate(&self) -> lab_plugin_api::Result<()> {
        let check = |key: &str, ok: bool, expected: &str, found: String| {
            if ok {
                Ok(())
            } else {
                Err(lab_plugin_api::Error::config(key, format!("expected {expected}, found {found}")))
            }
        };
        check(
            "target",
            (-1.0..=1.0).contains(&self.target),
            "a number in [-1, 1] (the paper uses 0.6)",
            self.target.to_string(),
        )?;
        check(
            "adjust_kimg",
            self.adjust_kimg.is_finite() && self.adjust_kimg > 0.0,
            "a number > 0 (the paper uses 500)",
            self.adjust_kimg.to_string(),
        )?;
        check("interval", self.interval >= 1, "an integer >= 1", self.interval.to_string())?;
        check(
            "batch_size",
            self.batch_size >= 0,
            "an integer >= 0 (0 counts images from D's outputs)",
            self.batch_size.to_string(),
        )?;
        check("initial_p", (0.0..=1.0).contains(&self.initial_p), "a number in [0, 1]", self.initial_p.to_string())
    }

    /// The validated policy; errors name the entry and key (`policy[1].degrees`).
    pub fn pipeline(&self) -> lab_plugin_api::Result<Pipeline> {
        Pipeline::from_toml("policy", &self.policy)
    }
}
