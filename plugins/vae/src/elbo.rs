//! `elbo`: the negative evidence lower bound of a VAE with a Bernoulli decoder,
//! −ELBO = −E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I)), with the analytic KL
//! −½ Σ(1 + log σ² − μ² − σ²) and one z = μ + σ·ε per image (the reparameterisation trick;
//! ε from libtorch's generator, which the core seeds for every phase).
//!
//! Grey-level pixels are the Bernoulli targets, p = (x + 1)/2, as in the reference
//! implementation: on Fashion-MNIST (not binary) the "likelihood" is then the summed binary
//! cross-entropy, comparable across runs of this model but not a density of the data.
use lab_nn::gaussian::kl_standard_normal;
pub use lab_nn::gaussian::reparameterise;
use lab_nn::prelude::*;
use lab_plugin_api::{BuildEnv, LossCtx, LossPlugin, Losses, PhasePlan, PHASE_G};

/// The two terms of −ELBO, per image, in nats.
pub struct ElboTerms {
    /// −log p(x|z): binary cross-entropy summed over pixels.
    pub reconstruction: Tensor,
    /// KL(q(z|x) ‖ N(0, I)).
    pub kl: Tensor,
}

impl ElboTerms {
    /// The terms for a batch: `mu`, `logvar` of q(z|x) `[N, Z]`, the decoder's `logits` and the
    /// Bernoulli `target` in [0, 1] (each `[N, …]`, flattened here).
    pub fn of(mu: &Tensor, logvar: &Tensor, logits: &Tensor, target: &Tensor) -> Self {
        let n = logits.size()[0];
        let logits = logits.reshape([n, -1]);
        let target = target.reshape([n, -1]);
        // −[t·log σ(l) + (1 − t)·log(1 − σ(l))] = softplus(l) − t·l, stable for any logit.
        let reconstruction = (logits.softplus() - &target * &logits).sum_dim_intlist(1, false, Kind::Float);
        Self { reconstruction, kl: kl_standard_normal(mu, logvar) }
    }

    /// −ELBO per image with the KL weighted by `beta` (1: the ELBO itself).
    pub fn negative_elbo(&self, beta: f64) -> Tensor {
        &self.reconstruction + &self.kl * beta
    }
}

/// Images in [-1, 1] as Bernoulli targets in [0, 1].
pub fn to_target(x: &Tensor) -> Tensor {
    ((x + 1.0) * 0.5).clamp(0.0, 1.0)
}

/// `[loss.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElboConfig {
    /// Weight of the KL term (1: the ELBO; other values give a β-VAE).
    pub beta: f64,
}

impl Default for ElboConfig {
    fn default() -> Self {
        Self { beta: 1.0 }
    }
}

/// The `elbo` loss plugin.
pub struct Elbo {
    beta: f64,
}

impl LossPlugin for Elbo {
    const NAME: &'static str = "elbo";
    const DESCRIPTION: &'static str =
        "Negative ELBO of a VAE with a Bernoulli decoder, one phase for encoder and decoder (Kingma & Welling 2013)";
    type Config = ElboConfig;

    fn create(config: ElboConfig, _env: BuildEnv) -> Result<Self> {
        check::non_negative("beta", config.beta, "0 drops the KL term: a plain auto-encoder")?;
        Ok(Self { beta: config.beta })
    }

    /// One phase, `G`, stepping every network that lists it: the encoder and the decoder.
    fn plan(&self) -> Vec<PhasePlan> {
        vec![PhasePlan::new(PHASE_G)]
    }

    fn loss(&mut self, _phase: &str, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        let x = ctx.real()?;
        let mut q = ctx.run_network("encoder", &[x.shallow_clone()], true)?;
        let logvar = q.remove(1);
        let mu = q.remove(0);
        let z = reparameterise(&mu, &logvar);
        let logits = ctx.run_network("generator", &[z], true)?.remove(1);
        let terms = ElboTerms::of(&mu, &logvar, &logits, &to_target(&x));
        let reconstruction = terms.reconstruction.mean(Kind::Float);
        let kl = terms.kl.mean(Kind::Float);
        ctx.log_scalar("loss/elbo", &-(&reconstruction + &kl))?;
        ctx.log_scalar("loss/kl", &kl)?;
        ctx.log_scalar("loss/reconstruction", &reconstruction)?;
        // The batch mean of −ELBO (the reference sums over the batch; with Adam only ε sees the
        // difference).
        Ok(Losses::all(reconstruction + kl * self.beta))
    }
}
