//! `vaegan`: the three losses of VAE-GAN as the official code weighs them (`model/aegan.py`),
//! in one phase (`VG`) stepping the encoder, the decoder and the discriminator:
//! - encoder: L_prior + L_llike, with L_prior = KL(q(z|x) ‖ N(0, I)) and
//!   L_llike = ½‖Dis_l(x̃) − Dis_l(x)‖² (a unit-variance Gaussian on D's features, constant
//!   dropped), x̃ = Dec(z), z = μ + σ·ε. The GAN term never reaches the encoder.
//! - decoder: w·L_llike + (1 − w)·mean log(1 − D(Dec(z_p))), z_p ~ N(0, I), w =
//!   `recon_vs_gan_weight` (the code's per-parameter gradient weights; the decoder's GAN term
//!   is the minimax one). The code scales D's output gradient by the sample weights and its
//!   input gradient by their inverses, so the decoder's GAN gradient carries no sample weight;
//! - discriminator: −[r·mean log(D(x) + ε) + g·mean log(1 − D(Dec(z_p)) + ε)], r =
//!   `real_vs_gen_weight`, g = 1 − r (the CIFAR run discriminates prior samples only, so there
//!   are as many generated as real images), ε = 1e-3. D is not trained by L_llike.
//! - D runs on joint batches, as the code's: [x̃; x] for Dis_l and [x; Dec(z_p)] for the GAN
//!   term, so its batch norm sees both halves together.
//!
//! Equilibrium gating (`GradientDescent.train_epoch`): with c_real = −mean log(D(x) + ε) and
//! c_fake = −mean log(1 − D(x̃_p) + ε), D skips its step when either is below
//! `equilibrium − margin`, the decoder when either is above `equilibrium + margin`, and both
//! step when both would skip. The encoder always steps. Reading the two costs is one host sync
//! per step, as in the official code.
use lab_nn::gaussian::{kl_standard_normal, reparameterise};
use lab_nn::prelude::*;
use lab_plugin_api::{BuildEnv, LossCtx, LossPlugin, Losses, PhasePlan};

/// The phase stepping all three networks.
pub const PHASE: &str = "VG";

/// `[loss.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeGanLossConfig {
    /// w: the decoder's weight on L_llike against (1 − w) on the GAN term (CIFAR 1e-5, CelebA
    /// 1e-6; `build_model`'s default 5e-5).
    pub recon_vs_gan_weight: f64,
    /// r: D's weight on real images against 1 − r on generated ones.
    pub real_vs_gen_weight: f64,
    /// The gating's centre and margin; `margin = 0` turns gating off.
    pub equilibrium: f64,
    pub margin: f64,
    /// ε inside D's logarithms.
    pub eps: f64,
    /// `false`: the same encoder and decoder trained as a plain VAE, the baseline of the check
    /// (the code's `model/ae.py` with its `NLLNormal`: KL + ½‖x̃ − x‖² on pixels, a unit-variance
    /// Gaussian); D is never stepped and no GAN term is computed.
    pub adversarial: bool,
}

impl Default for VaeGanLossConfig {
    fn default() -> Self {
        Self {
            recon_vs_gan_weight: 1e-5,
            real_vs_gen_weight: 0.5,
            equilibrium: 0.68,
            margin: 0.35,
            eps: 1e-3,
            adversarial: true,
        }
    }
}

/// Which of the gated networks step, given D's two costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    pub discriminator: bool,
    pub decoder: bool,
}

impl Gate {
    /// The official rule for costs `real` and `fake` (margin 0: both always step).
    pub fn decide(real: f64, fake: f64, equilibrium: f64, margin: f64) -> Self {
        if margin <= 0.0 {
            return Self { discriminator: true, decoder: true };
        }
        let discriminator = !(real < equilibrium - margin || fake < equilibrium - margin);
        let decoder = !(real > equilibrium + margin || fake > equilibrium + margin);
        if discriminator || decoder {
            Self { discriminator, decoder }
        } else {
            Self { discriminator: true, decoder: true }
        }
    }
}

/// The `vaegan` loss plugin.
pub struct VaeGanLoss {
    config: VaeGanLossConfig,
}

impl LossPlugin for VaeGanLoss {
    const NAME: &'static str = "vaegan";
    const DESCRIPTION: &'static str =
        "VAE-GAN's encoder, decoder and discriminator losses with equilibrium gating (Larsen et al. 2016)";
    type Config = VaeGanLossConfig;

    fn create(config: VaeGanLossConfig, _env: BuildEnv) -> Result<Self> {
        check::unit_interval("recon_vs_gan_weight", config.recon_vs_gan_weight)?;
        check::unit_interval("real_vs_gen_weight", config.real_vs_gen_weight)?;
        check::non_negative("equilibrium", config.equilibrium, "a cost of 0")?;
        check::non_negative("margin", config.margin, "0 turns gating off")?;
        check::non_negative("eps", config.eps, "no guard inside the logarithms")?;
        Ok(Self { config })
    }

    fn plan(&self) -> Vec<PhasePlan> {
        vec![PhasePlan::new(PHASE)]
    }

    fn loss(&mut self, _phase: &str, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        let c = &self.config;
        let x = ctx.real()?;
        let batch = x.size()[0];
        let mut q = ctx.run_network("encoder", &[x.shallow_clone()], true)?;
        let logvar = q.remove(1);
        let mu = q.remove(0);
        let x_tilde = ctx.run_network("generator", &[reparameterise(&mu, &logvar)], true)?.remove(0);
        let prior = kl_standard_normal(&mu, &logvar).mean(Kind::Float);
        if !c.adversarial {
            let pixels = ((&x_tilde - &x).square().flatten(1, -1).sum_dim_intlist(1, false, Kind::Float) * 0.5)
                .mean(Kind::Float);
            ctx.log_scalar("vaegan/kl", &prior.detach())?;
            ctx.log_scalar("vaegan/pixel_nll", &pixels.detach())?;
            return Ok(Losses::new().group(&["encoder", "generator"], prior + pixels).skip("discriminator"));
        }
        // D sees [x̃; x] as one batch, as the code's `discriminator_recon(concat(x_tilde, x))`:
        // its batch norm then normalises both halves with the same statistics. Called apart,
        // each half would be normalised on its own and the likelihood would be blind to any
        // shift every reconstruction shares (speckle raises every feature alike). Nothing is
        // detached, as in the code: the likelihood's gradient reaches x̃ through both halves,
        // and it never steps D because D's loss below does not contain it.
        let features = ctx.run_network("discriminator", &[Tensor::cat(&[&x_tilde, &x], 0)], true)?.remove(1);
        let (f_tilde, f_x) = (features.narrow(0, 0, batch), features.narrow(0, batch, batch));
        let llike = ((f_tilde - f_x).square().sum_dim_intlist(1, false, Kind::Float) * 0.5).mean(Kind::Float);

        // The GAN term on [x; Dec(z_p)], one batch again (the code's `concat(x_src, x)`).
        let z_p = ctx.sample_z(batch)?;
        let x_p = ctx.run_network("generator", &[z_p], true)?.remove(0);
        let d = ctx.run_network("discriminator", &[Tensor::cat(&[&x, &x_p], 0)], true)?.remove(0).sigmoid();
        let (d_real, d_fake) = (d.narrow(0, 0, batch), d.narrow(0, batch, batch));
        let log_real = (&d_real + c.eps).log().mean(Kind::Float);
        let log_fake = (-&d_fake + 1.0 + c.eps).log().mean(Kind::Float);
        let (r, g) = (c.real_vs_gen_weight, 1.0 - c.real_vs_gen_weight);
        let w = c.recon_vs_gan_weight;

        let gate = Gate::decide(-log_real.double_value(&[]), -log_fake.double_value(&[]), c.equilibrium, c.margin);
        ctx.log_scalar("vaegan/kl", &prior.detach())?;
        ctx.log_scalar("vaegan/llike", &llike.detach())?;
        ctx.log_scalar("vaegan/real_cost", &(-&log_real).detach())?;
        ctx.log_scalar("vaegan/fake_cost", &(-&log_fake).detach())?;
        ctx.log_scalar("vaegan/discriminator_stepped", &Tensor::from(gate.discriminator as u8 as f32))?;
        ctx.log_scalar("vaegan/decoder_stepped", &Tensor::from(gate.decoder as u8 as f32))?;

        let mut losses = Losses::new().add("encoder", &prior + &llike);
        losses = if gate.decoder {
            losses.add("generator", &llike * w + &log_fake * (1.0 - w))
        } else {
            losses.skip("generator")
        };
        losses = if gate.discriminator {
            losses.add("discriminator", -(log_real * r + log_fake * g))
        } else {
            losses.skip("discriminator")
        };
        Ok(losses)
    }
}
