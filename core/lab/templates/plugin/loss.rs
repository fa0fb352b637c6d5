//! # {{name}}
//!
//! The relativistic average GAN loss (Jolicoeur-Martineau, 2018; RaSGAN): D estimates how much
//! more realistic a real image is than the average fake, and G the reverse. With C the logits,
//! C̄_r and C̄_f their means over the real and the fake batch, and σ the sigmoid:
//!
//! L_D = −E_r[log σ(C(x_r) − C̄_f)] − E_f[log(1 − σ(C(x_f) − C̄_r))]
//! L_G = −E_f[log σ(C(x_f) − C̄_r)] − E_r[log(1 − σ(C(x_r) − C̄_f))]
//!
//! Unlike the standard loss, G's loss also reads D's logits on real images.
use lab_plugin_api::config::check;
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{BuildEnv, LossCtx, LossPlugin, Result};
use serde::{Deserialize, Serialize};

/// `[loss.config]`: unknown keys are refused, missing ones take these defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Scales both losses (1 = the paper's).
    pub weight: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self { weight: 1.0 }
    }
}

#[derive(Debug)]
pub struct Relativistic {
    weight: f64,
}

/// −E[log σ(a)] − E[log(1 − σ(b))], written with softplus for stability: −log σ(t) = softplus(−t).
fn relativistic(a: &Tensor, b: &Tensor) -> Tensor {
    a.neg().softplus().mean(Kind::Float) + b.softplus().mean(Kind::Float)
}

impl LossPlugin for Relativistic {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "{{description}}";
    type Config = Config;

    fn create(config: Config, _env: BuildEnv) -> Result<Self> {
        check::non_negative("weight", config.weight, "0 turns the loss off")?;
        Ok(Self { weight: config.weight })
    }

    /// The default plan calls this in phase D (`train.d_steps` times per step).
    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (real, fake) = (ctx.d_real()?, ctx.d_fake()?);
        let loss = relativistic(&(&real - fake.mean(Kind::Float)), &(&fake - real.mean(Kind::Float)));
        ctx.log("loss/d_relativistic", &loss);
        Ok(loss * self.weight)
    }

    /// ... and this in phase G: only the generator steps, but D's logits on reals count too.
    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (real, fake) = (ctx.d_real()?, ctx.d_fake()?);
        let loss = relativistic(&(&fake - real.mean(Kind::Float)), &(&real - fake.mean(Kind::Float)));
        Ok(loss * self.weight)
    }
}

lab_plugin_api::export_plugins! { loss: Relativistic }

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::{PHASE_D, PHASE_G};
    use lab_plugin_testkit::loss::{create, grad_sum, FakeLossHost};

    fn softplus(x: f64) -> f64 {
        x.exp().ln_1p()
    }

    /// The formula, in f64 on the fake context's logits.
    fn expected(a: &[f64], b: &[f64]) -> f64 {
        let (ma, mb) = (a.iter().sum::<f64>() / a.len() as f64, b.iter().sum::<f64>() / b.len() as f64);
        let first = a.iter().map(|x| softplus(-(x - mb))).sum::<f64>() / a.len() as f64;
        first + b.iter().map(|x| softplus(x - ma)).sum::<f64>() / b.len() as f64
    }

    fn logits(host: &FakeLossHost, x: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(host.logits(x).detach().to_kind(Kind::Double).view([-1])).unwrap()
    }

    #[test]
    fn d_and_g_losses_match_the_formula() {
        let mut host = FakeLossHost::new(PHASE_D);
        let (r, f) = (logits(&host, &host.real), logits(&host, &host.fake));
        let d = host.loss(&mut create::<Relativistic>("").unwrap()).unwrap();
        assert!((d.double_value(&[]) - expected(&r, &f)).abs() < 1e-5);
        assert_eq!(host.logged.len(), 1, "D's loss is logged");

        let mut host = FakeLossHost::new(PHASE_G);
        let g = host.loss(&mut create::<Relativistic>("").unwrap()).unwrap();
        assert!((g.double_value(&[]) - expected(&f, &r)).abs() < 1e-5);
        g.backward();
        assert!(grad_sum(&host.fake) > 0.0, "G's loss reaches the generator's output");
    }

    #[test]
    fn a_negative_weight_is_refused() {
        let err = create::<Relativistic>("weight = -1").err().unwrap();
        assert_eq!(err.to_string(), "key `weight`: expected a finite number >= 0 (0 turns the loss off), found -1");
    }
}
