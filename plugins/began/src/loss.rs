//! `began`: the boundary-equilibrium objective, one phase stepping both networks from the same
//! forward pass (as carpedm20's code runs both optimizers in one `sess.run`):
//! - L(v) = mean |v − D(v)| (pixel L1, η = 1);
//! - L_D = L(x) − k_t·L(G(z)) for D (G(z) detached), L_G = L(G(z)) for G;
//! - then k_{t+1} = clip(k_t + λ_k·(γ·L(x) − L(G(z))), 0, 1), from k_0 = 0.
//!
//! k_t lives on the device (no host sync per step) and is the loss's checkpointed state. Logged:
//! `began/k`, `began/m_global` = L(x) + |γ·L(x) − L(G(z))| (the convergence measure),
//! `began/real_loss`, `began/fake_loss`, and `began/balance` = L(G(z)) / L(x), which should
//! settle near γ.
use lab_nn::prelude::*;
use lab_plugin_api::{BuildEnv, Error, LossCtx, LossPlugin, Losses, PhasePlan, Role};

/// The phase stepping both networks.
pub const PHASE: &str = "GD";

/// `[loss.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeganConfig {
    /// γ, the diversity ratio E[L(G(z))] / E[L(x)] the equilibrium holds (carpedm20: 0.5).
    pub gamma: f64,
    /// λ_k, k_t's learning rate (the paper: 0.001).
    pub lambda_k: f64,
}

impl Default for BeganConfig {
    fn default() -> Self {
        Self { gamma: 0.5, lambda_k: 0.001 }
    }
}

/// The `began` loss plugin.
pub struct Began {
    config: BeganConfig,
    /// k_t (a double scalar on the run's device).
    k: Tensor,
}

/// L(v) = mean |v − D(v)| over a batch.
pub fn autoencoder_loss(v: &Tensor, reconstruction: &Tensor) -> Tensor {
    (v - reconstruction).abs().mean(Kind::Float)
}

/// One step of k: clip(k + λ_k·(γ·L(x) − L(G(z))), 0, 1).
pub fn next_k(k: &Tensor, real_loss: &Tensor, fake_loss: &Tensor, gamma: f64, lambda_k: f64) -> Tensor {
    let balance = real_loss.to_kind(Kind::Double) * gamma - fake_loss.to_kind(Kind::Double);
    (k + balance * lambda_k).clamp(0.0, 1.0)
}

impl Began {
    /// k_t as it stands.
    pub fn k(&self) -> f64 {
        self.k.double_value(&[])
    }
}

impl LossPlugin for Began {
    const NAME: &'static str = "began";
    const DESCRIPTION: &'static str =
        "Boundary-equilibrium objective with k_t control and M_global (Berthelot et al. 2017)";
    type Config = BeganConfig;

    fn create(config: BeganConfig, env: BuildEnv) -> Result<Self> {
        check::unit_interval("gamma", config.gamma)?;
        check::non_negative("lambda_k", config.lambda_k, "0 freezes k_t at 0")?;
        Ok(Self { config, k: Tensor::zeros([], (Kind::Double, env.device())) })
    }

    fn plan(&self) -> Vec<PhasePlan> {
        vec![PhasePlan { networks: vec!["generator".into(), "discriminator".into()], ..PhasePlan::new(PHASE) }]
    }

    fn loss(&mut self, _phase: &str, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        let x = ctx.real()?;
        let z = ctx.sample_z(ctx.batch_size()?)?;
        let fake = ctx.generate(&z, None)?;
        let reconstruct = |ctx: &mut LossCtx<'_>, v: &Tensor, role| -> Result<Tensor> {
            let out = ctx.discriminate(v, None, true, role)?;
            out.into_iter().next().ok_or_else(|| Error::new("the discriminator returned nothing"))
        };
        let recon_real = reconstruct(ctx, &x, Role::Other)?;
        if recon_real.size() != x.size() {
            return Err(Error::new(format!(
                "the `began` loss needs an auto-encoder discriminator (its first output an image of the input's shape {:?}, found {:?}): use architecture `began`",
                x.size(),
                recon_real.size()
            )));
        }
        let real_loss = autoencoder_loss(&x, &recon_real);
        let fake_detached = fake.detach();
        let fake_loss_d = autoencoder_loss(&fake_detached, &reconstruct(ctx, &fake_detached, Role::Other)?);
        let fake_loss_g = autoencoder_loss(&fake, &reconstruct(ctx, &fake, Role::Other)?);
        let k = self.k.to_kind(Kind::Float);
        let d_loss = &real_loss - &k * &fake_loss_d;
        let gamma = self.config.gamma;
        let m_global = &real_loss + (&real_loss * gamma - &fake_loss_g).abs();
        ctx.log_scalar("began/k", &self.k)?;
        ctx.log_scalar("began/m_global", &m_global.detach())?;
        ctx.log_scalar("began/real_loss", &real_loss.detach())?;
        ctx.log_scalar("began/fake_loss", &fake_loss_g.detach())?;
        ctx.log_scalar("began/balance", &(&fake_loss_g / &real_loss).detach())?;
        self.k = next_k(&self.k, &real_loss.detach(), &fake_loss_g.detach(), gamma, self.config.lambda_k);
        Ok(Losses::new().add("discriminator", d_loss).add("generator", fake_loss_g))
    }

    /// k_t, as JSON (serde_json writes and reads f64 exactly).
    fn state(&self) -> Result<String> {
        serde_json::to_string(&KState { k: self.k() }).map_err(|e| Error::new(format!("writing k_t: {e}")))
    }

    fn load_state(&mut self, state: &str) -> Result<()> {
        let parsed: KState = serde_json::from_str(state).map_err(|e| {
            Error::new(format!("the `began` loss's state should be {{\"k\": <number>}}, found {state:?}: {e}"))
        })?;
        self.k = Tensor::from(parsed.k).to_kind(Kind::Double).to_device(self.k.device());
        Ok(())
    }
}

/// What the checkpoint keeps.
#[derive(Serialize, Deserialize)]
struct KState {
    k: f64,
}
