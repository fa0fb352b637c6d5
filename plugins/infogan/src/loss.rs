//! `infogan`: the GAN objective with InfoGAN's information term, as the official code writes
//! it: D_loss = −mean(log D(x) + log(1 − D(G(z, c)))) − λ·L_I and G_loss = −mean(log D(G(z, c)))
//! − λ·L_I (the non-saturating G loss), L_I estimated on the fake batch only, in both phases.
//! Q is stepped with D; G receives L_I's gradient too.
//!
//! L_I = E[log Q(c | G(z, c))] + H(c) ≤ I(c; G(z, c)): for a categorical code of k classes,
//! the mean log-probability Q gives the drawn class plus ln k; for a continuous U(−1, 1) code
//! with σ fixed to 1, the mean log N(c; μ, 1) plus ln 2.
use lab_nn::prelude::*;
use lab_plugin_api::{BuildEnv, Error, LossCtx, LossPlugin, Role};

use crate::latent::Codes;

/// L_I's two parts, in nats (scalars).
pub struct MutualInformation {
    pub categorical: Tensor,
    pub continuous: Tensor,
}

impl MutualInformation {
    /// L_I for Q's outputs `q` `[N, code width]` and the drawn codes `[N, code width]`
    /// (one-hot categoricals, then continuous values).
    pub fn of(q: &Tensor, codes: &Tensor, categorical: &[i64], continuous: i64) -> Self {
        let mut offset = 0;
        let mut cat = Tensor::zeros([], (Kind::Float, q.device()));
        for &k in categorical {
            let log_q = q.narrow(1, offset, k).log_softmax(1, Kind::Float);
            let drawn = (log_q * codes.narrow(1, offset, k)).sum_dim_intlist(1, false, Kind::Float);
            cat = cat + drawn.mean(Kind::Float) + (k as f64).ln();
            offset += k;
        }
        let mut cont = Tensor::zeros([], (Kind::Float, q.device()));
        if continuous > 0 {
            let mu = q.narrow(1, offset, continuous);
            let c = codes.narrow(1, offset, continuous);
            let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
            let log_q = ((c - mu).square() * -0.5 - half_log_2pi).sum_dim_intlist(1, false, Kind::Float);
            cont = log_q.mean(Kind::Float) + continuous as f64 * 2f64.ln();
        }
        Self { categorical: cat, continuous: cont }
    }

    /// λ_cat·L_cat + λ_cont·L_cont.
    pub fn weighted(&self, categorical: f64, continuous: f64) -> Tensor {
        &self.categorical * categorical + &self.continuous * continuous
    }
}

/// `[loss.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfoGanLossConfig {
    /// λ for the categorical codes (the paper: 1).
    pub lambda_categorical: f64,
    /// λ for the continuous codes (the MNIST code: 1).
    pub lambda_continuous: f64,
    /// The latent's codes, as `[model.config]` declares them (the last entries of z).
    pub categorical: Vec<i64>,
    pub continuous: i64,
    /// Whether G maximises L_I. `false` is the paper's Fig. 1 baseline: a plain GAN whose Q
    /// (and D) still learn to read the codes, so L_I measures how much G encodes them.
    pub mi_to_generator: bool,
}

impl Default for InfoGanLossConfig {
    fn default() -> Self {
        Self {
            lambda_categorical: 1.0,
            lambda_continuous: 1.0,
            categorical: vec![10],
            continuous: 2,
            mi_to_generator: true,
        }
    }
}

/// The `infogan` loss plugin.
pub struct InfoGanLoss {
    config: InfoGanLossConfig,
    codes: Codes,
}

impl InfoGanLoss {
    /// G(z, c) through D and Q: D's logit and L_I.
    fn fake_terms(&self, ctx: &mut LossCtx<'_>) -> Result<(Tensor, MutualInformation)> {
        let n = ctx.batch_size()?;
        let z = ctx.sample_z(n)?;
        if z.size()[1] < self.codes.code_width() {
            return Err(Error::config(
                "categorical",
                format!("the latent has {} values, fewer than the codes' {}", z.size()[1], self.codes.code_width()),
            ));
        }
        let fake = ctx.generate(&z, None)?;
        let mut d = ctx.discriminate(&fake, None, true, Role::Fake)?;
        if d.len() < 2 {
            return Err(Error::new("the `infogan` loss needs a discriminator whose second output is the features Q reads (architecture `infogan`)"));
        }
        let features = d.remove(1);
        let q = ctx.run_network("q_head", &[features], true)?.remove(0);
        if q.size()[1] != self.codes.code_width() {
            return Err(Error::config(
                "categorical",
                format!(
                    "Q predicts {} code values but `categorical` and `continuous` describe {}: set them as in [model.config]",
                    q.size()[1],
                    self.codes.code_width()
                ),
            ));
        }
        let codes = z.narrow(1, z.size()[1] - self.codes.code_width(), self.codes.code_width());
        let mi = MutualInformation::of(&q, &codes, &self.codes.categorical, self.codes.continuous);
        Ok((d.remove(0), mi))
    }

    fn information(&self, mi: &MutualInformation) -> Tensor {
        mi.weighted(self.config.lambda_categorical, self.config.lambda_continuous)
    }
}

impl LossPlugin for InfoGanLoss {
    const NAME: &'static str = "infogan";
    const DESCRIPTION: &'static str =
        "Non-saturating GAN loss minus λ·L_I, InfoGAN's mutual-information bound (Chen et al. 2016)";
    type Config = InfoGanLossConfig;

    fn create(config: InfoGanLossConfig, _env: BuildEnv) -> Result<Self> {
        check::non_negative("lambda_categorical", config.lambda_categorical, "0 drops the term")?;
        check::non_negative("lambda_continuous", config.lambda_continuous, "0 drops the term")?;
        if config.categorical.iter().any(|&k| k < 2) {
            return Err(Error::config(
                "categorical",
                format!("expected class counts of at least 2, found {:?}", config.categorical),
            ));
        }
        check::at_least("continuous", config.continuous, 0)?;
        let codes = Codes { noise: 0, categorical: config.categorical.clone(), continuous: config.continuous };
        Ok(Self { config, codes })
    }

    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let real = ctx.real()?;
        let d_real = ctx.discriminate(&real, None, true, Role::Real)?.remove(0);
        let (d_fake, mi) = self.fake_terms(ctx)?;
        let gan = (-d_real).softplus().mean(Kind::Float) + d_fake.softplus().mean(Kind::Float);
        Ok(gan - self.information(&mi))
    }

    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (d_fake, mi) = self.fake_terms(ctx)?;
        ctx.log_scalar("info/mi_categorical", &mi.categorical)?;
        ctx.log_scalar("info/mi_continuous", &mi.continuous)?;
        let gan = (-d_fake).softplus().mean(Kind::Float);
        Ok(if self.config.mi_to_generator { gan - self.information(&mi) } else { gan })
    }
}
