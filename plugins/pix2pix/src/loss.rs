//! `pix2pix`: the conditional GAN + L1 objective (Isola et al. 2017, eq. 4), with the binary
//! cross-entropy on every logit of the PatchGAN's map, averaged over patches and images.
//! - D: ½[BCE(D(A, B), 1) + BCE(D(A, G(A)), 0)], G(A) detached;
//! - G: `gan_weight`·BCE(D(A, G(A)), 1) + `lambda_l1`·mean|B − G(A)|.
//!
//! `gan_weight = 0` is the paper's L1-only baseline, `lambda_l1 = 0` its cGAN-only ablation.
//! As in the official code, G translates each batch once per step: the D phase's G(A), kept
//! with its autograd history, is what the G phase scores with the updated D, when the G phase
//! trains on the same batch (the default plan: the core hands G the last D step's batch). So
//! batch norm's running statistics move once per step and D and G see the same dropout draw.
//! D is called through `discriminate` without augmentation, so the core logs D's statistics
//! on real and translated pairs.
use lab_nn::prelude::*;
use lab_plugin_api::config::check::non_negative;
use lab_plugin_api::{BuildEnv, Error, LossCtx, LossPlugin, Role};

use crate::model::{needs_pairs, GENERATOR};

/// `[loss.config]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pix2pixLossConfig {
    /// λ, the weight of the L1 distance to the target (100 in the paper); 0 drops it.
    pub lambda_l1: f64,
    /// The weight of the adversarial term (1 in the paper); 0 trains G on L1 alone.
    pub gan_weight: f64,
}

impl Default for Pix2pixLossConfig {
    fn default() -> Self {
        Self { lambda_l1: 100.0, gan_weight: 1.0 }
    }
}

/// G's translation of one batch, kept from the D phase for the G phase of the same step.
struct Translation {
    step: u64,
    /// Where the batch's A images live: the G phase reuses the translation only for the same
    /// batch.
    input: usize,
    fake: Tensor,
}

/// The `pix2pix` loss plugin.
pub struct Pix2pixLoss {
    config: Pix2pixLossConfig,
    kept: Option<Translation>,
}

/// The mean of every element, in the tensor's own precision.
fn average(t: &Tensor) -> Tensor {
    t.mean(t.kind())
}

/// BCE with logits against a constant target, averaged over every element (patch and image).
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Tensor {
    // softplus(−x) = −log σ(x), softplus(x) = −log(1 − σ(x)).
    average(&logits.softplus()) * (1.0 - target) + average(&(-logits).softplus()) * target
}

/// D's loss from its logit maps on real and translated pairs.
pub fn d_loss_from_logits(real: &Tensor, fake: &Tensor) -> Tensor {
    (bce_with_logits(real, 1.0) + bce_with_logits(fake, 0.0)) * 0.5
}

/// The mean absolute difference of two batches.
pub fn l1_distance(fake: &Tensor, target: &Tensor) -> Tensor {
    average(&(fake - target).abs())
}

/// A and B stacked on channels: D's input.
pub fn pair(a: &Tensor, b: &Tensor) -> Tensor {
    Tensor::cat(&[a, b], 1)
}

fn real_pair(ctx: &LossCtx<'_>) -> Result<(Tensor, Tensor)> {
    let b = ctx.real_b()?.ok_or_else(|| Error::new(needs_pairs()))?;
    Ok((ctx.real()?, b))
}

impl Pix2pixLoss {
    /// G(A) for this step's batch: the one kept from this step's D phase when the batch is the
    /// same, else a fresh training-mode translation.
    fn translate(&mut self, ctx: &mut LossCtx<'_>, a: &Tensor) -> Result<Tensor> {
        let step = ctx.step()?;
        if let Some(kept) = self.kept.take() {
            if kept.step == step && kept.input == a.data_ptr() as usize && kept.fake.requires_grad() {
                return Ok(kept.fake);
            }
        }
        Ok(ctx.run_network(GENERATOR, &[a.shallow_clone()], true)?.remove(0))
    }
}

impl LossPlugin for Pix2pixLoss {
    const NAME: &'static str = "pix2pix";
    const DESCRIPTION: &'static str =
        "pix2pix (Isola et al. 2017): conditional GAN on (A, B) pairs with a PatchGAN, plus λ·L1 to the target";
    type Config = Pix2pixLossConfig;

    fn create(config: Pix2pixLossConfig, _env: BuildEnv) -> Result<Self> {
        non_negative("lambda_l1", config.lambda_l1, "no L1 term: the cGAN-only ablation")?;
        non_negative("gan_weight", config.gan_weight, "no adversarial term: the L1-only baseline")?;
        if config.lambda_l1 == 0.0 && config.gan_weight == 0.0 {
            return Err(Error::config(
                "gan_weight",
                "with `lambda_l1` also 0 the generator has nothing to minimise; set either above 0",
            ));
        }
        Ok(Self { config, kept: None })
    }

    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (a, b) = real_pair(ctx)?;
        let fake = ctx.run_network(GENERATOR, &[a.shallow_clone()], true)?.remove(0);
        let real_logits = ctx.discriminate(&pair(&a, &b), None, false, Role::Real)?.remove(0);
        let fake_logits = ctx.discriminate(&pair(&a, &fake.detach()), None, false, Role::Fake)?.remove(0);
        self.kept = Some(Translation { step: ctx.step()?, input: a.data_ptr() as usize, fake });
        Ok(d_loss_from_logits(&real_logits, &fake_logits))
    }

    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (a, b) = real_pair(ctx)?;
        let fake = self.translate(ctx, &a)?;
        let l1 = l1_distance(&fake, &b);
        ctx.log("loss/l1", &l1);
        let l1_term = &l1 * self.config.lambda_l1;
        // The L1-only baseline never runs D.
        if self.config.gan_weight == 0.0 {
            return Ok(l1_term);
        }
        let logits = ctx.discriminate(&pair(&a, &fake), None, false, Role::Fake)?.remove(0);
        let gan = bce_with_logits(&logits, 1.0);
        ctx.log("loss/gan", &gan);
        Ok(l1_term + gan * self.config.gan_weight)
    }
}
