//! The `stylegan2` loss: stylegan2-ada-pytorch's `StyleGAN2Loss` and its phases
//! (`training/loss.py`, `training/training_loop.py`).
//!
//! - `G`: softplus(−D(G(z))), the non-saturating logistic loss.
//! - `D`: softplus(D(G(z))) + softplus(−D(x)); with `r1_every ≤ 1` R1 is added here (the
//!   official `Dboth`).
//! - `D_r1`, every `r1_every` steps: (γ/2)·E‖∇ₓD(x)‖² × `r1_every`, on the augmented reals, the
//!   gradient taken with respect to the clean images (or the augmented ones: `r1_on`).
//! - `G_pl`, every `pl_every` steps: path-length regularisation on a batch shrunk by
//!   `pl_batch_shrink`: with y ~ N(0, I)/√(HW), the length ‖∇_w ⟨G(w), y⟩‖ per image (the squared
//!   gradient summed over w's width, averaged over the broadcast copies), its running mean `a`
//!   (decay `pl_decay`, checkpointed), and the penalty E(length − a)² × `pl_weight` ×
//!   `pl_every`.
//!
//! Both regularisation phases are *lazy*: the trainer gives D (and G) learning rates × N/(N+1)
//! and betas ^ N/(N+1) for their interval N, exactly as the official training loop does, and
//! that even when a term's weight is 0 (the cifar config turns path length off but keeps G's
//! rescaled optimiser: `G_pl` then runs and steps nothing).
use lab_nn::penalty;
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{BuildEnv, Error, LossCtx, LossPlugin, Losses, PhasePlan, Result, PHASE_D, PHASE_G};
use serde::{Deserialize, Serialize};

/// The lazy R1 phase.
pub const PHASE_D_R1: &str = "D_r1";
/// The lazy path-length phase.
pub const PHASE_G_PL: &str = "G_pl";

/// What users write under `[loss.config]` for `loss.name = "stylegan2"`; the defaults are the
/// cifar config's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StyleGan2LossConfig {
    /// R1 weight γ (cifar: 0.01; FFHQ at 1024: 10). 0 = off.
    pub r1_gamma: f64,
    /// R1's interval in steps (stylegan2-ada: 16); 0 or 1 adds it to every D step, without the
    /// lazy rescaling (DiffAugment's StyleGAN2).
    pub r1_every: u64,
    /// What R1 differentiates D by: `clean`, the real images before the run's augmentation
    /// (stylegan2-ada: the gradient flows back through the augmentation), or `augmented`, the
    /// augmented images themselves (DiffAugment's StyleGAN2, `ns_r1_DiffAugment`).
    pub r1_on: String,
    /// Path-length weight (stylegan2-ada: 2; cifar: 0 = off).
    pub pl_weight: f64,
    /// The path-length phase's interval (stylegan2-ada: 4); 0 or 1 = no path-length phase and no
    /// rescaling of G's optimiser.
    pub pl_every: u64,
    /// The path-length batch is the batch divided by this.
    pub pl_batch_shrink: i64,
    /// The running mean's rate: a ← a + decay·(mean length − a).
    pub pl_decay: f64,
}

impl Default for StyleGan2LossConfig {
    fn default() -> Self {
        Self {
            r1_gamma: 0.01,
            r1_every: 16,
            r1_on: R1_ON_CLEAN.into(),
            pl_weight: 0.0,
            pl_every: 4,
            pl_batch_shrink: 2,
            pl_decay: 0.01,
        }
    }
}

/// `r1_on`'s values.
const R1_ON_CLEAN: &str = "clean";
const R1_ON_AUGMENTED: &str = "augmented";

/// The `stylegan2` loss plugin.
#[derive(Debug)]
pub struct StyleGan2Loss {
    config: StyleGan2LossConfig,
    /// The running mean of path lengths, a tensor so that updating it never reads the device:
    /// a float64 scalar on the CPU until the first `G_pl` moves it to the run's device and kind
    /// (a restored float32 value, widened to float64 in the state, narrows back exactly).
    pl_mean: Tensor,
}

impl StyleGan2Loss {
    fn lazy_r1(&self) -> bool {
        self.config.r1_every > 1
    }

    /// D's logits on the real batch and, for R1, the leaf they are differentiated by.
    fn real_logits(&self, ctx: &mut LossCtx<'_>, for_r1: bool) -> Result<(Tensor, Option<Tensor>)> {
        if for_r1 && self.config.r1_on == R1_ON_AUGMENTED {
            let (logits, augmented) = penalty::augmented_real_logits(ctx)?;
            return Ok((logits, Some(augmented)));
        }
        penalty::real_logits(ctx, for_r1)
    }

    /// D's main loss, with R1 when it is not lazy.
    fn d_main(&self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let with_r1 = !self.lazy_r1() && self.config.r1_gamma > 0.0;
        let (real, real_input) = self.real_logits(ctx, with_r1)?;
        let fake = penalty::flat(ctx.d_fake()?);
        let loss = fake.softplus().mean(Kind::Float) + (-&real).softplus().mean(Kind::Float);
        Ok(match real_input {
            Some(x) => loss + penalty::r1(ctx, &real, &x, self.config.r1_gamma)?,
            None => loss,
        })
    }

    /// The lazy R1 term, scaled by its interval (the official `gain`).
    fn d_r1(&self, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        if self.config.r1_gamma == 0.0 {
            return Ok(Losses::new().skip("discriminator"));
        }
        let (real, x) = self.real_logits(ctx, true)?;
        let x = x.expect("asked for the leaf");
        let term = penalty::r1(ctx, &real, &x, self.config.r1_gamma)?;
        Ok(Losses::new().add("discriminator", term * self.config.r1_every as f64))
    }

    /// Path-length regularisation, scaled by its interval.
    fn g_pl(&mut self, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        let c = &self.config;
        if c.pl_weight == 0.0 {
            return Ok(Losses::new().skip("generator"));
        }
        let n = (ctx.batch_size()? / c.pl_batch_shrink).max(1);
        let z = ctx.sample_z(n)?;
        let mut inputs = vec![z];
        inputs.extend(ctx.sample_labels(n)?);
        let outputs = ctx.run_network("generator", &inputs, true)?;
        let [image, ws] = &outputs[..] else {
            return Err(Error::new(
                "the `stylegan2` loss's path-length term needs a generator that returns [images, ws] \
                 (the `stylegan2` architecture); set `pl_weight = 0` for other architectures",
            ));
        };
        let size = image.size();
        let noise = image.randn_like() / ((size[2] * size[3]) as f64).sqrt();
        let grads = Tensor::f_run_backward(&[(image * noise).sum(Kind::Float)], &[ws], true, true)
            .map_err(|e| format!("could not differentiate G with respect to w: {e}"))?;
        let lengths = grads[0].square().sum_dim_intlist([2i64].as_slice(), false, Kind::Float).mean_dim(
            [1i64].as_slice(),
            false,
            Kind::Float,
        );
        let lengths = lengths.sqrt();
        let previous = self.pl_mean.to_kind(lengths.kind()).to_device(lengths.device());
        let mean = previous.lerp(&lengths.mean(lengths.kind()).detach(), c.pl_decay);
        let penalty = (&lengths - &mean).square().mean(Kind::Float) * c.pl_weight;
        ctx.log("pl/length", &lengths.mean(Kind::Float).detach());
        ctx.log("pl/mean", &mean);
        ctx.log("loss/pl", &penalty.detach());
        self.pl_mean = mean;
        Ok(Losses::new().add("generator", penalty * c.pl_every as f64))
    }
}

impl LossPlugin for StyleGan2Loss {
    const NAME: &'static str = "stylegan2";
    const DESCRIPTION: &'static str = "StyleGAN2's loss (stylegan2-ada-pytorch): non-saturating logistic, lazy R1 and \
         lazy path-length regularisation with its running mean; defaults: the cifar config";
    type Config = StyleGan2LossConfig;

    fn create(config: StyleGan2LossConfig, _env: BuildEnv) -> Result<Self> {
        use lab_plugin_api::config::check::{non_negative, one_of, positive, unit_interval};
        non_negative("r1_gamma", config.r1_gamma, "0 turns it off")?;
        one_of("r1_on", &config.r1_on, &[R1_ON_CLEAN, R1_ON_AUGMENTED])?;
        non_negative("pl_weight", config.pl_weight, "0 turns it off")?;
        positive("pl_batch_shrink", config.pl_batch_shrink)?;
        unit_interval("pl_decay", config.pl_decay)?;
        Ok(Self { config, pl_mean: Tensor::from(0.0f64) })
    }

    fn plan(&self) -> Vec<PhasePlan> {
        let lazy = |name: &str, network: &str, every: u64| PhasePlan {
            networks: vec![network.to_string()],
            every,
            lazy: true,
            ..PhasePlan::new(name)
        };
        // The official order: G's phases, then D's.
        let mut plan = vec![PhasePlan::new(PHASE_G)];
        if self.config.pl_every > 1 {
            plan.push(lazy(PHASE_G_PL, "generator", self.config.pl_every));
        }
        plan.push(PhasePlan::new(PHASE_D));
        if self.lazy_r1() {
            plan.push(lazy(PHASE_D_R1, "discriminator", self.config.r1_every));
        }
        plan
    }

    fn loss(&mut self, phase: &str, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        match phase {
            PHASE_G => Ok(Losses::all(penalty::flat(ctx.d_fake()?).neg().softplus().mean(Kind::Float))),
            PHASE_D => Ok(Losses::all(self.d_main(ctx)?)),
            PHASE_D_R1 => self.d_r1(ctx),
            PHASE_G_PL => self.g_pl(ctx),
            other => Err(Error::new(format!(
                "loss `stylegan2` has no phase `{other}` (it has G, {PHASE_G_PL}, D and {PHASE_D_R1})"
            ))),
        }
    }

    fn state(&self) -> Result<String> {
        serde_json::to_string(&PlState { pl_mean: self.pl_mean.double_value(&[]) })
            .map_err(|e| Error::new(format!("writing the path-length mean: {e}")))
    }

    fn load_state(&mut self, state: &str) -> Result<()> {
        let parsed: PlState = serde_json::from_str(state).map_err(|e| {
            Error::new(format!(
                "the `stylegan2` loss's state should be {{\"pl_mean\": <number>}}, found {state:?}: {e}"
            ))
        })?;
        self.pl_mean = Tensor::from(parsed.pl_mean);
        Ok(())
    }
}

/// What the checkpoint keeps.
#[derive(Serialize, Deserialize)]
struct PlState {
    pl_mean: f64,
}
