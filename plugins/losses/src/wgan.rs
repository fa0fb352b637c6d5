//! `wgan`: the Wasserstein GAN with weight clipping (Arjovsky et al. 2017) as its official code
//! trains it (martinarjovsky/WassersteinGAN `main.py`): the critic minimises
//! mean f(G(z)) − mean f(x) `n_critic` times per generator step, each time on a fresh real
//! batch, and 100 times on the first 25 generator steps and every 500th (the schedule the
//! README says the paper omits); G minimises −mean f(G(z)). The clipping of every critic
//! parameter (BN's γ and β included) to ±c after each step is the optimizer's constraint:
//! `[optim.networks.discriminator] clip = 0.01`, with RMSprop lr 5e-5.
//!
//! It logs `wgan/estimate` = mean f(x) − mean f(G(z)), the critic's estimate of the
//! Wasserstein distance (up to the Lipschitz constant clipping implies), from the critic steps.
use lab_plugin_api::config::check;
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{BuildEnv, LossCtx, LossPlugin, PhasePlan, Result, PHASE_D, PHASE_G};
use serde::{Deserialize, Serialize};

use crate::objective::{Objective, WganGp};
use crate::penalty;

/// `[loss.config]` of `wgan`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WganConfig {
    /// Critic steps per generator step.
    pub n_critic: u32,
    /// Critic steps on the first `warmup_first` generator steps and every `warmup_every`-th.
    pub warmup_critic: u32,
    pub warmup_first: u64,
    /// 0: no periodic burst (igul222's `gan_mnist.py` has neither).
    pub warmup_every: u64,
}

impl Default for WganConfig {
    fn default() -> Self {
        Self { n_critic: 5, warmup_critic: 100, warmup_first: 25, warmup_every: 500 }
    }
}

/// The `wgan` loss plugin.
pub struct Wgan {
    config: WganConfig,
}

impl LossPlugin for Wgan {
    const NAME: &'static str = "wgan";
    const DESCRIPTION: &'static str =
        "Wasserstein loss for weight clipping, with the official critic schedule (Arjovsky et al., 2017)";
    type Config = WganConfig;

    fn create(config: WganConfig, _env: BuildEnv) -> Result<Self> {
        check::positive("n_critic", config.n_critic as i64)?;
        Ok(Self { config })
    }

    /// `D` × n_critic (× warmup_critic on the burst steps), then `G`.
    fn plan(&self) -> Vec<PhasePlan> {
        let c = &self.config;
        let critic = PhasePlan {
            repeat: c.n_critic,
            boost_repeat: if c.warmup_first > 0 || c.warmup_every > 0 { c.warmup_critic } else { 0 },
            boost_first: c.warmup_first,
            boost_every: c.warmup_every,
            ..PhasePlan::new(PHASE_D)
        };
        vec![critic, PhasePlan::new(PHASE_G)]
    }

    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (real, _) = penalty::real_logits(ctx, false)?;
        let fake = penalty::flat(ctx.d_fake()?);
        ctx.log_scalar("wgan/estimate", &(real.mean(Kind::Float) - fake.mean(Kind::Float)).detach())?;
        Ok(WganGp::d_loss(&real, &fake))
    }

    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        Ok(WganGp::g_loss(&penalty::flat(ctx.d_fake()?)))
    }
}
