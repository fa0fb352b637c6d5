//! [`GanLoss`]: one [`LossPlugin`] implementation shared by every objective, which adds the
//! configured penalties to the D loss, and with `simultaneous` steps D and G together from one
//! forward pass.
use std::marker::PhantomData;

use lab_plugin_api::tch::Tensor;
use lab_plugin_api::{BuildEnv, LossCtx, LossPlugin, Losses, PhasePlan, PHASE_D, PHASE_G};

use crate::config::{Penalties, PenaltyConfig};
use crate::objective::Objective;
use crate::penalty;

/// A loss plugin made of the objective `O` plus its configured penalties.
pub struct GanLoss<O> {
    penalties: Penalties,
    simultaneous: bool,
    // `fn() -> O`: the plugin owns no `O`, and stays `Send` whatever `O` is.
    objective: PhantomData<fn() -> O>,
}

impl<O> GanLoss<O> {
    /// The validated penalty weights.
    pub fn penalties(&self) -> Penalties {
        self.penalties
    }
}

impl<O: Objective> LossPlugin for GanLoss<O> {
    const NAME: &'static str = O::NAME;
    const DESCRIPTION: &'static str = O::DESCRIPTION;
    type Config = O::Config;

    fn create(config: O::Config, _env: BuildEnv) -> lab_plugin_api::Result<Self> {
        let penalties = config.penalties();
        penalties.validate()?;
        Ok(Self { penalties, simultaneous: config.simultaneous(), objective: PhantomData })
    }

    fn plan(&self) -> Vec<PhasePlan> {
        if self.simultaneous {
            vec![PhasePlan {
                networks: vec!["discriminator".into(), "generator".into()],
                ..PhasePlan::new(SIMULTANEOUS)
            }]
        } else {
            Vec::new()
        }
    }

    fn loss(&mut self, phase: &str, ctx: &mut LossCtx<'_>) -> lab_plugin_api::Result<Losses> {
        match phase {
            PHASE_D => Ok(Losses::all(self.d_loss(ctx)?)),
            PHASE_G => Ok(Losses::all(self.g_loss(ctx)?)),
            SIMULTANEOUS => {
                // One D(G(z)) for both: D's group steps D's parameters only, G's group G's.
                let (d, fake) = self.d_terms(ctx)?;
                Ok(Losses::new().add("discriminator", d).add("generator", O::g_loss(&fake)))
            }
            other => Err(format!(
                "loss `{}` has no phase `{other}` (it has D and G, or {SIMULTANEOUS} with `simultaneous`)",
                O::NAME
            )
            .into()),
        }
    }

    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> lab_plugin_api::Result<Tensor> {
        Ok(self.d_terms(ctx)?.0)
    }

    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> lab_plugin_api::Result<Tensor> {
        Ok(O::g_loss(&penalty::flat(ctx.d_fake()?)))
    }
}

/// The phase of the simultaneous update.
pub const SIMULTANEOUS: &str = "DG";

impl<O: Objective> GanLoss<O> {
    /// The objective's D loss plus the configured penalties, and D's logits on the fake batch.
    /// Real images go through D first, then fakes (the order fixes the augmentation's draws).
    fn d_terms(&self, ctx: &mut LossCtx<'_>) -> lab_plugin_api::Result<(Tensor, Tensor)> {
        let Penalties { gp_lambda, r1_gamma, cr_lambda, cr_run_augment } = self.penalties;
        let (real, real_input) = penalty::real_logits(ctx, r1_gamma > 0.0)?;
        let fake = penalty::flat(ctx.d_fake()?);
        let mut terms = vec![O::d_loss(&real, &fake)];
        if let Some(x) = &real_input {
            terms.push(penalty::r1(ctx, &real, x, r1_gamma)?);
        }
        if gp_lambda > 0.0 {
            terms.push(penalty::gradient_penalty(ctx, gp_lambda)?);
        }
        if cr_lambda > 0.0 {
            terms.push(penalty::consistency(ctx, cr_lambda, cr_run_augment)?);
        }
        // Summed out of place: tch's `+=` is an in-place op on tensors inside the autograd graph.
        Ok((terms.into_iter().reduce(|sum, term| sum + term).expect("the objective's own term"), fake))
    }
}
