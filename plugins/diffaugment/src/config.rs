//! The `[augment.config]` table of the `diffaugment` plugin, and the policy it names.
use lab_plugin_api::config::did_you_mean;
use serde::{Deserialize, Serialize};

use lab_augment_ops::{Op, Padding, Step};

/// `augment.name = "diffaugment"`'s config. The defaults are the paper's for low-shot and FFHQ
/// (and StyleGAN2 on 10–20 % of CIFAR-10); BigGAN-CIFAR uses `policy = "translation,cutout"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiffAugmentConfig {
    /// Comma-separated operations, applied in order: `color`, `translation`, `cutout`.
    /// Empty means no augmentation.
    pub policy: String,
    /// Translation moves each image by up to ±⌊ratio·size + 0.5⌋ pixels per axis.
    pub translation_ratio: f64,
    /// Cutout zeroes a square of side ⌊ratio·size + 0.5⌋ per axis.
    pub cutout_ratio: f64,
}

impl Default for DiffAugmentConfig {
    fn default() -> Self {
        Self { policy: "color,translation,cutout".into(), translation_ratio: 0.125, cutout_ratio: 0.5 }
    }
}

/// One name of a DiffAugment policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyOp {
    /// Brightness, then saturation, then contrast.
    Color,
    Translation,
    Cutout,
}

impl PolicyOp {
    pub const ALL: [PolicyOp; 3] = [PolicyOp::Color, PolicyOp::Translation, PolicyOp::Cutout];

    /// The word users write in `policy`.
    pub fn name(self) -> &'static str {
        match self {
            PolicyOp::Color => "color",
            PolicyOp::Translation => "translation",
            PolicyOp::Cutout => "cutout",
        }
    }
}

impl DiffAugmentConfig {
    /// The policy's operations, in order. Names are trimmed; an empty policy is allowed.
    pub fn policy_ops(&self) -> lab_plugin_api::Result<Vec<PolicyOp>> {
        if self.policy.trim().is_empty() {
            return Ok(Vec::new());
        }
        let valid: Vec<&str> = PolicyOp::ALL.iter().map(|op| op.name()).collect();
        self.policy
            .split(',')
            .map(str::trim)
            .enumerate()
            .map(|(i, name)| {
                PolicyOp::ALL.into_iter().find(|op| op.name() == name).ok_or_else(|| {
                    let what = if name.is_empty() {
                        format!("empty op at position {}", i + 1)
                    } else {
                        format!("unknown op `{name}`")
                    };
                    let hint = did_you_mean(name, valid.iter().copied())
                        .map(|s| format!("did you mean `{s}`? "))
                        .unwrap_or_default();
                    lab_plugin_api::Error::config(
                        "policy",
                        format!("{what} in \"{}\"; {hint}valid ops: {}", self.policy, valid.join(", ")),
                    )
                })
            })
            .collect()
    }

    /// The policy as pipeline steps, all applied to every sample (p = 1). Each carries
    /// DiffAugment's exact distribution: brightness U(−0.5, 0.5), saturation U(0, 2), contrast
    /// U(0.5, 1.5), integer translation with zero fill, and cutout.
    pub fn steps(&self) -> lab_plugin_api::Result<Vec<Step>> {
        for (key, value) in [("translation_ratio", self.translation_ratio), ("cutout_ratio", self.cutout_ratio)] {
            lab_plugin_api::config::check::unit_interval(key, value)?;
        }
        let mut steps = Vec::new();
        for op in self.policy_ops()? {
            match op {
                PolicyOp::Color => steps.extend([
                    Op::Brightness { max: 0.5 },
                    Op::Saturation { min: 0.0, max: 2.0 },
                    Op::Contrast { min: 0.5, max: 1.5 },
                ]),
                PolicyOp::Translation => {
                    steps.push(Op::Translate { ratio: self.translation_ratio, padding: Padding::Zeros })
                }
                PolicyOp::Cutout => steps.push(Op::Cutout { ratio: self.cutout_ratio }),
            }
        }
        Ok(steps.into_iter().map(|op| Step::new(op, 1.0)).collect())
    }
}
