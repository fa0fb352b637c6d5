//! The `cyclegan` loss: least-squares adversarial terms on the PatchGANs' logit maps, cycle
//! consistency and identity terms for the generators, and image pools for the discriminators.
//!
//! Its plan is `G` (both generators, one group), then `D` (both discriminators, one group), the
//! official order. The fakes D learns from are those the same step's G phase made, before G's
//! update, detached (the official code computes them in one forward and uses them for both
//! updates): the loss keeps them between the two phases. Checkpoints are written between steps,
//! so they never hold these; they hold the pools ([`LossPlugin::state`]).
//!
//! D's real term uses the G phase's real images too, as the official code does (one batch per
//! iteration for both updates): the core draws a fresh batch for a `D` phase, which the loss
//! leaves unused.
use lab_plugin_api::tch::Tensor;
use lab_plugin_api::{BuildEnv, Error, LossCtx, LossPlugin, Losses, PhasePlan, Result, PHASE_D, PHASE_G};
use serde::{Deserialize, Serialize};

use crate::config::CycleGanLossConfig;
use crate::model::{DISCRIMINATOR_A, DISCRIMINATOR_B, GENERATOR_AB, GENERATOR_BA};
use crate::pool::{ImagePool, PoolState};

/// The `cyclegan` loss plugin.
pub struct CycleGanLoss {
    config: CycleGanLossConfig,
    /// Generated images of domain A (G_BA's), for D_A.
    pool_a: ImagePool,
    /// Generated images of domain B (G_AB's), for D_B.
    pool_b: ImagePool,
    /// The fakes of the last G phase, for the D phase of the same step.
    pending: Option<StepFakes>,
}

/// What a G phase leaves for the D phase of its step.
struct StepFakes {
    step: u64,
    /// G_BA(B), detached.
    fake_a: Tensor,
    /// G_AB(A), detached.
    fake_b: Tensor,
    /// The real batches G translated, for D's real terms.
    real_a: Tensor,
    real_b: Tensor,
}

/// The loss state a checkpoint keeps: both pools.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LossState {
    pool_a: PoolState,
    pool_b: PoolState,
}

/// Mean squared distance of a logit map from `target` (LSGAN: 1 for real, 0 for fake).
fn least_squares(logits: &Tensor, target: f64) -> Tensor {
    (logits - target).square().mean(logits.kind())
}

/// Mean absolute difference.
fn l1(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b).abs().mean(a.kind())
}

fn run(ctx: &mut LossCtx<'_>, network: &str, x: &Tensor) -> Result<Tensor> {
    ctx.run_network(network, &[x.shallow_clone()], true)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(format!("network `{network}` returned no outputs")))
}

/// The second domain's batch, or why CycleGAN cannot train without one.
fn domain_b(ctx: &mut LossCtx<'_>) -> Result<Tensor> {
    ctx.real_b()?.ok_or_else(|| {
        Error::config(
            "data.dataset",
            "the cyclegan loss needs two-domain data: a batch of domain A and one of domain B; set \
             data.dataset = \"unpaired-folders\" with data.path = domain A's folder and data.path_b = domain B's",
        )
    })
}

impl CycleGanLoss {
    /// The generators' loss, and the fakes D will use.
    fn generator_phase(&mut self, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        let c = &self.config;
        let (real_a, real_b) = (ctx.real()?, domain_b(ctx)?);
        let fake_b = run(ctx, GENERATOR_AB, &real_a)?;
        let rec_a = run(ctx, GENERATOR_BA, &fake_b)?;
        let fake_a = run(ctx, GENERATOR_BA, &real_b)?;
        let rec_b = run(ctx, GENERATOR_AB, &fake_a)?;

        let gan_ab = least_squares(&run(ctx, DISCRIMINATOR_B, &fake_b)?, 1.0);
        let gan_ba = least_squares(&run(ctx, DISCRIMINATOR_A, &fake_a)?, 1.0);
        let cycle_a = l1(&rec_a, &real_a) * c.lambda_a;
        let cycle_b = l1(&rec_b, &real_b) * c.lambda_b;
        let mut total = &gan_ab + &gan_ba + &cycle_a + &cycle_b;
        ctx.log("loss/g_gan_ab", &gan_ab);
        ctx.log("loss/g_gan_ba", &gan_ba);
        ctx.log("loss/cycle_a", &cycle_a);
        ctx.log("loss/cycle_b", &cycle_b);
        if c.lambda_identity > 0.0 {
            let (ca, cb) = (real_a.size()[1], real_b.size()[1]);
            if ca != cb {
                return Err(Error::config(
                    "lambda_identity",
                    format!(
                        "the identity loss feeds each generator images of its output domain, so both domains need \
                         the same channels; domain A has {ca}, domain B {cb}: set lambda_identity = 0"
                    ),
                ));
            }
            // G_AB should leave an image that is already in B as it is, and G_BA one in A.
            let identity_b = l1(&run(ctx, GENERATOR_AB, &real_b)?, &real_b) * (c.lambda_b * c.lambda_identity);
            let identity_a = l1(&run(ctx, GENERATOR_BA, &real_a)?, &real_a) * (c.lambda_a * c.lambda_identity);
            ctx.log("loss/identity_a", &identity_a);
            ctx.log("loss/identity_b", &identity_b);
            total = total + identity_a + identity_b;
        }
        self.pending = Some(StepFakes {
            step: ctx.step()?,
            fake_a: fake_a.detach(),
            fake_b: fake_b.detach(),
            real_a: real_a.detach(),
            real_b: real_b.detach(),
        });
        Ok(Losses::new().group(&[GENERATOR_AB, GENERATOR_BA], total))
    }

    /// The discriminators' loss on real images and pooled fakes of this step's G phase.
    fn discriminator_phase(&mut self, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        let step = ctx.step()?;
        let fakes = match self.pending.take() {
            Some(f) if f.step == step => f,
            _ => {
                return Err(Error::new(format!(
                    "the cyclegan loss's D phase ran at step {step} without a G phase before it in the same step: \
                     D learns from the fakes G made in that step. Keep the loss's own plan (G, then D): remove \
                     `[[train.phases]]` from the experiment, or list `G` before `D` with the same `every`"
                )))
            }
        };
        let (real_a, real_b) = (&fakes.real_a, &fakes.real_b);
        // The official order: D_B's pool is queried first, then D_A's.
        let fake_b = self.pool_b.query(&fakes.fake_b);
        let d_b = (least_squares(&run(ctx, DISCRIMINATOR_B, real_b)?, 1.0)
            + least_squares(&run(ctx, DISCRIMINATOR_B, &fake_b)?, 0.0))
            * 0.5;
        let fake_a = self.pool_a.query(&fakes.fake_a);
        let d_a = (least_squares(&run(ctx, DISCRIMINATOR_A, real_a)?, 1.0)
            + least_squares(&run(ctx, DISCRIMINATOR_A, &fake_a)?, 0.0))
            * 0.5;
        ctx.log("loss/d_a", &d_a);
        ctx.log("loss/d_b", &d_b);
        // The two discriminators share no parameters, so one group over the sum steps each by
        // its own loss's gradient.
        Ok(Losses::new().group(&[DISCRIMINATOR_A, DISCRIMINATOR_B], d_a + d_b))
    }

    /// The pools, for tests.
    pub fn pools(&self) -> (&ImagePool, &ImagePool) {
        (&self.pool_a, &self.pool_b)
    }
}

impl LossPlugin for CycleGanLoss {
    const NAME: &'static str = "cyclegan";
    const DESCRIPTION: &'static str = "CycleGAN (Zhu et al. 2017): LSGAN on PatchGAN maps, cycle and identity L1, \
         image pools; plan G then D; needs two-domain data";
    type Config = CycleGanLossConfig;

    fn create(config: CycleGanLossConfig, env: BuildEnv) -> Result<Self> {
        config.validate()?;
        let capacity = config.pool_size as usize;
        Ok(Self {
            config,
            pool_a: ImagePool::new(capacity, env.device()),
            pool_b: ImagePool::new(capacity, env.device()),
            pending: None,
        })
    }

    fn plan(&self) -> Vec<PhasePlan> {
        vec![PhasePlan::new(PHASE_G), PhasePlan::new(PHASE_D)]
    }

    fn loss(&mut self, phase: &str, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        match phase {
            PHASE_G => self.generator_phase(ctx),
            PHASE_D => self.discriminator_phase(ctx),
            other => Err(Error::new(format!("the cyclegan loss has phases G and D, not `{other}`"))),
        }
    }

    fn state(&self) -> Result<String> {
        let state = LossState { pool_a: self.pool_a.state()?, pool_b: self.pool_b.state()? };
        serde_json::to_string(&state).map_err(|e| Error::new(format!("writing the cyclegan image pools: {e}")))
    }

    fn load_state(&mut self, state: &str) -> Result<()> {
        let parsed: LossState = serde_json::from_str(state).map_err(|e| {
            Error::new(format!(
                "the cyclegan loss state should be {{\"pool_a\": {{...}}, \"pool_b\": {{...}}}} (the image pools); \
                 it cannot be read: {e}"
            ))
        })?;
        self.pool_a.load_state(&parsed.pool_a).map_err(|e| e.context("pool_a"))?;
        self.pool_b.load_state(&parsed.pool_b).map_err(|e| e.context("pool_b"))?;
        self.pending = None;
        Ok(())
    }
}
