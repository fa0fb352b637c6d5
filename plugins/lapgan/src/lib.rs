//! # lab-plugin-lapgan
//!
//! LAPGAN (Denton, Chintala, Szlam & Fergus, "Deep Generative Image Models using a Laplacian
//! Pyramid of Adversarial Networks", NeurIPS 2015), as facebook/eyescream builds it
//! (`cifar/scripts/train_cifar_coarse_to_fine.lua` for a finer level, the paper's §4 for the
//! coarsest; shared/ZOO.md §3). Two plugins:
//! - the `lapgan` architecture ([`LapganConfig`]): a `generator` holding one generator per
//!   pyramid level (the coarsest fully connected from z, each finer one convolutional from the
//!   upsampled coarser image and a noise plane, producing the band-pass image), and
//!   `discriminator_0` .. `discriminator_K`. Its latent is U(−1, 1): z, then one noise plane
//!   per finer level. The generator's network outputs are `[image, stages]` from a latent, and
//!   the per-level images built on the real pyramid from `[latent, real images]`; its grid
//!   shows every stage of each sample (Ĩ_0, h_1, Ĩ_1, h_2, Ĩ_2);
//! - the `lapgan` loss: every level trained independently with the standard GAN objective, level
//!   k's G conditioned on the real coarse image u(I_{k−1}) and its D shown the level's full image
//!   (the real I_k or u(I_{k−1}) + G_k(...)); D's accuracy per level is logged
//!   (`lapgan/d_accuracy_<k>`: ZOO.md's check that it stays near 0.5).
//!
//! Left out: the class-conditional variant (a label plane concatenated to each level's input)
//! and the Parzen-window estimate of the paper's Table 1.
//!
//! `reference/lapgan.py` is an independent PyTorch re-implementation; a test feeds it this
//! crate's weights and compares the whole pyramid's sampling and the finest discriminator in
//! float64.
use lab_plugin_api::inputs;
use lab_plugin_api::tch::{nn, Device, Kind, Tensor};
use lab_plugin_api::{
    ArchitecturePlugin, BuildEnv, Error, LossCtx, LossPlugin, Losses, Network, PhasePlan, Result, Spec,
    VarStoreNetwork, VisualCtx, PHASE_D, PHASE_G,
};

pub mod config;
pub mod model;

pub use config::{LapganConfig, Settings};
pub use model::{Discriminator, Generator};

lab_plugin_api::export_plugins! {
    architecture: Lapgan,
    loss: LapganLoss,
}

const GENERATOR: &str = "generator";

/// The name of level `k`'s discriminator.
pub fn discriminator_name(k: i64) -> String {
    format!("discriminator_{k}")
}

/// The `lapgan` architecture.
#[derive(Debug)]
pub struct Lapgan {
    settings: Settings,
    device: Device,
}

impl Lapgan {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl ArchitecturePlugin for Lapgan {
    const NAME: &'static str = "lapgan";
    const DESCRIPTION: &'static str = "LAPGAN (Denton et al., 2015): a Laplacian pyramid of generators, each finer \
         level drawing the band-pass image from the coarser one and a noise plane, one D per level";
    type Config = LapganConfig;

    fn create(config: LapganConfig, env: BuildEnv) -> Result<Self> {
        Ok(Self { settings: config.resolve(&env.data)?, device: env.device() })
    }

    /// z and the noise planes, side by side.
    fn z_dim(&self) -> i64 {
        self.settings.latent_width()
    }

    fn networks(&self) -> Vec<Spec> {
        let mut specs = vec![Spec::new(GENERATOR, &[PHASE_G])];
        specs.extend((0..self.settings.levels).map(|k| Spec::new(&discriminator_name(k), &[PHASE_D])));
        specs
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let s = self.settings.clone();
        let vs = nn::VarStore::new(self.device);
        if name == GENERATOR {
            let g = Generator::new(vs.root(), &s);
            let width = s.latent_width();
            let (channels, sides) = (s.channels, s.sides.clone());
            let forward = move |inputs: &[Tensor], _train: bool| {
                let latent = inputs::latent(Self::NAME, &inputs[0], width)?;
                match inputs {
                    [_] => {
                        let (image, stages) = g.sample(&latent);
                        Ok(vec![image, stages])
                    }
                    [_, real] => {
                        // The real images at any level's side: the levels up to that one.
                        let side = real.size().get(2).copied().filter(|s| sides.contains(s));
                        let side = side.unwrap_or(*sides.last().expect("a level"));
                        inputs::check_shape(Self::NAME, GENERATOR, "real images", real, &[channels, side, side])?;
                        Ok(g.on_real_pyramid(&latent, real))
                    }
                    _ => Err(Error::new(format!(
                        "lapgan generator: expected [latent] or [latent, real images], got {} tensors",
                        inputs.len()
                    ))),
                }
            };
            return Ok(Box::new(VarStoreNetwork { vs, forward }));
        }
        let level = (0..s.levels).find(|k| discriminator_name(*k) == name).ok_or_else(|| {
            let names: Vec<String> = self.networks().into_iter().map(|n| n.name).collect();
            Error::new(format!("lapgan has no network `{name}`; valid names: {}", names.join(", ")))
        })?;
        let d = Discriminator::new(vs.root(), &s, level as usize);
        let side = s.sides[level as usize];
        let shape = [s.channels, side, side];
        let label = discriminator_name(level);
        let forward = move |inputs: &[Tensor], train: bool| {
            let x = inputs.first().ok_or_else(|| Error::new(format!("lapgan {label}: expected [images]")))?;
            inputs::check_shape(Self::NAME, &label, "images", x, &shape)?;
            let (logits, features) = d.forward(x, train);
            Ok(vec![logits, features])
        };
        Ok(Box::new(VarStoreNetwork { vs, forward }))
    }

    /// U(−1, 1), as eyescream's noise.
    fn sample_latent(&self, n: i64) -> Result<Option<Tensor>> {
        Ok(Some(Tensor::rand([n, self.settings.latent_width()], (Kind::Float, self.device)) * 2.0 - 1.0))
    }

    /// One row per sample: Ĩ_0, h_1, Ĩ_1, ..., h_K, Ĩ_K at full size, the band-pass images
    /// stretched to ±1 each (they are small), about `log.samples` images in all.
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        let columns = 2 * self.settings.levels - 1;
        let z = ctx.fixed_latent()?;
        let rows = ((ctx.samples()? + columns - 1) / columns).clamp(1, z.size()[0]);
        let stages = ctx.run_network(GENERATOR, &[z.narrow(0, 0, rows)])?.remove(1);
        let stretched: Vec<Tensor> = (0..columns)
            .map(|c| {
                let stage = stages.select(1, c);
                if c % 2 == 1 {
                    let scale = stage.abs().amax([1i64, 2, 3].as_slice(), true).clamp_min(1e-8);
                    stage / scale
                } else {
                    stage
                }
            })
            .collect();
        let grid = Tensor::stack(&stretched, 1).flatten(0, 1);
        Ok(Some((grid, columns)))
    }
}

/// The `lapgan` loss: the standard GAN objective at every level, levels independent.
#[derive(Debug, Default)]
pub struct LapganLoss {
    config: LapganLossConfig,
    /// The pyramid's depth, learned from the generator in the step's `D` phase (the coarse
    /// phases run after it).
    levels: Option<usize>,
}

/// The phase that steps the coarsest D alone, and the one that steps G_0 alone.
pub const PHASE_D_COARSE: &str = "D_coarse";
pub const PHASE_G_COARSE: &str = "G_coarse";

/// `[loss.config]` of `lapgan`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LapganLossConfig {
    /// Alternating D_0/G_0 updates of the coarsest level per training step (1: every level
    /// once). eyescream trains each level in its own run for its own number of epochs; the
    /// coarsest, a fully connected GAN costing a hundredth of a finer level's step, needs
    /// thousands of updates to leave its early collapse, so a CPU run gives it more of them
    /// (each on a fresh real batch and fresh z, through the phases `D_coarse` and `G_coarse`,
    /// which step only `discriminator_0` and level 0's part of the generator).
    pub coarse_updates: u32,
}

impl Default for LapganLossConfig {
    fn default() -> Self {
        Self { coarse_updates: 1 }
    }
}

impl LapganLoss {
    /// The generator's per-level images on the real pyramid and the real pyramid itself.
    fn levels(ctx: &mut LossCtx<'_>) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let real = ctx.real()?;
        let n = real.size()[0];
        let latent = ctx.sample_z(n)?;
        let fakes = ctx.run_network(GENERATOR, &[latent, real.shallow_clone()], true)?;
        let reals = model::real_pyramid(&real, fakes.len() as i64);
        Ok((fakes, reals))
    }

    /// G_0's image alone (the generator given the real images at the coarsest side) and the
    /// real coarsest image.
    fn coarsest(&self, ctx: &mut LossCtx<'_>) -> Result<(Tensor, Tensor)> {
        let levels = self.levels.ok_or_else(|| {
            Error::new(format!("lapgan: phase `{PHASE_D_COARSE}` or `{PHASE_G_COARSE}` must run after `D` in a step"))
        })?;
        let real = model::real_pyramid(&ctx.real()?, levels as i64).swap_remove(0);
        let latent = ctx.sample_z(real.size()[0])?;
        let fake = ctx.run_network(GENERATOR, &[latent, real.shallow_clone()], true)?.swap_remove(0);
        Ok((fake, real))
    }

    /// D_k's standard GAN loss on a real and a generated image, logging its accuracy.
    fn d_loss(ctx: &mut LossCtx<'_>, k: usize, fake: &Tensor, real: &Tensor) -> Result<Tensor> {
        let r = Self::logit(ctx, k, real)?;
        let f = Self::logit(ctx, k, fake)?;
        let accuracy = (model::mean(&r.gt(0.0)) + model::mean(&f.lt(0.0))) / 2.0;
        ctx.log(&format!("lapgan/d_accuracy_{k}"), &accuracy);
        Ok((-&r).softplus().mean(Kind::Float) + f.softplus().mean(Kind::Float))
    }

    fn logit(ctx: &mut LossCtx<'_>, level: usize, x: &Tensor) -> Result<Tensor> {
        Ok(ctx.run_network(&discriminator_name(level as i64), &[x.shallow_clone()], true)?.swap_remove(0))
    }
}

impl LossPlugin for LapganLoss {
    const NAME: &'static str = "lapgan";
    const DESCRIPTION: &'static str = "LAPGAN's objective: the standard GAN loss at every pyramid level, each level's \
         G conditioned on the real coarse image (architecture `lapgan`)";
    type Config = LapganLossConfig;

    fn create(config: LapganLossConfig, _env: BuildEnv) -> Result<Self> {
        if config.coarse_updates == 0 {
            return Err(Error::new(
                "lapgan: loss.config.coarse_updates must be at least 1 (1 updates every level once a step)",
            ));
        }
        Ok(Self { config, levels: None })
    }

    /// `D`, `G`, then `coarse_updates − 1` more alternating `D_coarse`, `G_coarse` pairs.
    fn plan(&self) -> Vec<PhasePlan> {
        if self.config.coarse_updates == 1 {
            return Vec::new();
        }
        let mut plan = PhasePlan::default_plan();
        for _ in 1..self.config.coarse_updates {
            plan.push(PhasePlan { networks: vec![discriminator_name(0)], ..PhasePlan::new(PHASE_D_COARSE) });
            plan.push(PhasePlan { networks: vec![GENERATOR.into()], ..PhasePlan::new(PHASE_G_COARSE) });
        }
        plan
    }

    fn loss(&mut self, phase: &str, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        match phase {
            PHASE_D => {
                let (fakes, reals) = lab_plugin_api::tch::no_grad(|| Self::levels(ctx))?;
                self.levels = Some(fakes.len());
                let mut losses = Losses::new();
                for (k, (fake, real)) in fakes.iter().zip(&reals).enumerate() {
                    losses = losses.add(&discriminator_name(k as i64), Self::d_loss(ctx, k, fake, real)?);
                }
                Ok(losses)
            }
            PHASE_D_COARSE => {
                let (fake, real) = lab_plugin_api::tch::no_grad(|| self.coarsest(ctx))?;
                Ok(Losses::new().add(&discriminator_name(0), Self::d_loss(ctx, 0, &fake, &real)?))
            }
            PHASE_G_COARSE => {
                // Only G_0's weights are reached: the finer levels' stay as they are, with their
                // optimiser state.
                let (fake, _) = self.coarsest(ctx)?;
                let term = (-Self::logit(ctx, 0, &fake)?).softplus().mean(Kind::Float);
                ctx.log("lapgan/g_loss_0", &term.detach());
                Ok(Losses::all(term))
            }
            PHASE_G => {
                let (fakes, _) = Self::levels(ctx)?;
                let mut total: Option<Tensor> = None;
                for (k, fake) in fakes.iter().enumerate() {
                    let term = (-Self::logit(ctx, k, fake)?).softplus().mean(Kind::Float);
                    ctx.log(&format!("lapgan/g_loss_{k}"), &term.detach());
                    total = Some(match total {
                        Some(t) => t + term,
                        None => term,
                    });
                }
                Ok(Losses::all(total.ok_or_else(|| Error::new("lapgan: no levels"))?))
            }
            other => Err(Error::new(format!(
                "loss `lapgan` has no phase `{other}` (it has D, G, {PHASE_D_COARSE} and {PHASE_G_COARSE})"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
use lab_plugin_testkit::rng_lock;
