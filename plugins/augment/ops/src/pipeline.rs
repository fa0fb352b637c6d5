//! A list of operations applied in order, each to every sample independently with its own
//! probability.
//!
//! A sample an operation skips passes through it bit for bit unchanged. Consecutive warps
//! (rotate, scale, aniso, subpixel_translate, crop) sharing a padding are composed into one
//! matrix per sample and resampled once: a sample that draws several of them is blurred by one
//! bilinear interpolation, not several, and the padding is applied once, at the end (as ADA does).
use lab_plugin_api::tch::{Device, Tensor};
use lab_plugin_api::DataSpec;
use toml::Value;

use crate::{affine, check_batch, random, spec, Padding, Step};

/// A validated list of steps, and the config key they came from (for error messages).
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    key: String,
    steps: Vec<Step>,
}

impl Pipeline {
    /// A pipeline of `steps`; `key` names it in errors (e.g. `pipeline`).
    pub fn new(key: &str, steps: Vec<Step>) -> Self {
        Self { key: key.to_string(), steps }
    }

    /// Parses the TOML array at `key` (see [`spec`]).
    pub fn from_toml(key: &str, entries: &[Value]) -> lab_plugin_api::Result<Self> {
        Ok(Self::new(key, spec::parse_steps(key, entries)?))
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Refuses operations the data cannot take (quarter turns of non-square images), naming the
    /// entry. Sizes of 0 mean unknown and are not checked.
    pub fn check_data(&self, data: &DataSpec) -> lab_plugin_api::Result<()> {
        let (h, w) = (data.height, data.width);
        for (i, step) in self.steps.iter().enumerate() {
            if step.op.needs_square() && h > 0 && w > 0 && h != w {
                return Err(lab_plugin_api::Error::new(format!(
                    "`{}[{i}]`: `{}` needs square images, but the data is {h}×{w} (H×W); remove that entry",
                    self.key,
                    step.op.name()
                )));
            }
        }
        Ok(())
    }

    /// Applies every step to each sample of `x` with probability `strength · p` (a global
    /// strength, such as ADA's adaptive p, scales every step's own). Draws from libtorch's
    /// default generator: call [`random::seed`] first. Steps whose probability is 0 draw nothing.
    pub fn apply(&self, x: &Tensor, strength: f64) -> lab_plugin_api::Result<Tensor> {
        check_batch(x)?;
        let (n, _, h, w) = x.size4().map_err(|e| e.to_string())?;
        let mut out = x.shallow_clone();
        if n == 0 {
            return Ok(out);
        }
        let device = x.device();
        let prob = |step: &Step| (strength * step.p).clamp(0.0, 1.0);
        let mut i = 0;
        while i < self.steps.len() {
            let step = &self.steps[i];
            if let Some(padding) = step.op.warp_padding() {
                // The run of warps starting here that share its padding.
                let run = self.steps[i..].iter().take_while(|s| s.op.warp_padding() == Some(padding)).count();
                out = warp_run(&out, &self.steps[i..i + run], &prob, padding, (n, h, w), device);
                i += run;
                continue;
            }
            let p = prob(step);
            if p > 0.0 {
                let gate = draw_gate(n, p, device);
                let y = step.op.sample_apply(&out).map_err(|e| format!("`{}[{i}]`: {e}", self.key))?;
                out = select(&y, &out, gate.as_ref(), &[n, 1, 1, 1]);
            }
            i += 1;
        }
        Ok(out)
    }

    /// The steps as TOML entries, every parameter written out.
    pub fn to_toml(&self) -> Vec<Value> {
        spec::to_toml(&self.steps)
    }
}

/// Applies a run of warps with one resampling: each sample's matrix is the product of the
/// matrices it drew (the identity for steps it skipped).
fn warp_run(
    x: &Tensor,
    run: &[Step],
    prob: &dyn Fn(&Step) -> f64,
    padding: Padding,
    (n, h, w): (i64, i64, i64),
    device: Device,
) -> Tensor {
    let identity = affine::identity(n, device);
    let mut matrix: Option<Tensor> = None;
    // Which samples drew at least one warp: `all` once a step applied to every sample, else
    // the union of the gates drawn so far.
    let mut all = false;
    let mut any: Option<Tensor> = None;
    for step in run {
        let p = prob(step);
        if p <= 0.0 {
            continue;
        }
        let gate = draw_gate(n, p, device);
        let drawn = step.op.sample_warp(n, h, w, device);
        let drawn = select(&drawn, &identity, gate.as_ref(), &[n, 1, 1]);
        matrix = Some(match matrix {
            Some(m) => affine::then(&m, &drawn),
            None => drawn,
        });
        match gate {
            None => all = true,
            Some(g) => any = Some(any.map_or(g.shallow_clone(), |a| a.logical_or(&g))),
        }
    }
    let Some(matrix) = matrix else { return x.shallow_clone() };
    let warped = affine::warp(x, &matrix, padding);
    // Samples that drew no warp skip the resampling entirely, so they stay exact.
    let gate = if all { None } else { any };
    select(&warped, x, gate.as_ref(), &[n, 1, 1, 1])
}

/// A per-sample gate with probability `p`, or `None` when every sample is selected (`p >= 1`):
/// then nothing is drawn, so a pipeline of certain steps draws only its parameters.
fn draw_gate(n: i64, p: f64, device: Device) -> Option<Tensor> {
    (p < 1.0).then(|| random::coin(n, p, device))
}

/// `applied` where the gate is set (everywhere without a gate), `original` elsewhere.
fn select(applied: &Tensor, original: &Tensor, gate: Option<&Tensor>, shape: &[i64]) -> Tensor {
    match gate {
        Some(g) => applied.where_self(&g.view(shape), original),
        None => applied.shallow_clone(),
    }
}
