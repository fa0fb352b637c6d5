//! [`GanLoss`]: one [`LossPlugin`] implementation shared by every objective, which adds the
//! configured penalties to the D loss.
use std::marker::PhantomData;

use lab_plugin_api::tch::Tensor;
use lab_plugin_api::{BuildEnv, LossCtx, LossPlugin};

use crate::config::{Penalties, PenaltyConfig};
use crate::objective::Objective;
use crate::penalty;

/// A loss plugin made of the objective `O` plus its configured penalties.
pub struct GanLoss<O> {
    penalties: Penalties,
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
        Ok(Self { penalties, objective: PhantomData })
    }

    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> lab_plugin_api::Result<Tensor> {
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
        Ok(terms.into_iter().reduce(|sum, term| sum + term).expect("the objective's own term"))
    }

    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> lab_plugin_api::Result<Tensor> {
        Ok(O::g_loss(&penalty::flat(ctx.d_fake()?)))
    }
}
