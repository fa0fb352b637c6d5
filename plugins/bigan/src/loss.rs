//! `bigan`: the BiGAN / ALI game (Donahue et al. 2017, Alg. 1 of Dumoulin et al. 2017). D
//! separates the pairs (x, E(x)) from (G(z), z) with the binary cross-entropy; E and G, stepped
//! together, minimise the same cross-entropy with the labels swapped (the non-saturating form
//! both official codes use; "encoder and generator losses are always equal"). D is called
//! through `run_network` with both inputs, so the run's image augmentation never applies.
use lab_nn::prelude::*;
use lab_plugin_api::{BuildEnv, LossCtx, LossPlugin};

/// `[loss.config]` (nothing to set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BiganLossConfig {}

/// The `bigan` loss plugin.
pub struct BiganLoss;

/// D's logits on the real pair (x, E(x)) and the generated pair (G(z), z); E(x) and G(z) carry
/// autograd history only in a phase that steps E and G.
fn pair_logits(ctx: &mut LossCtx<'_>, stepping_eg: bool) -> Result<(Tensor, Tensor)> {
    let x = ctx.real()?;
    let ex = ctx.run_network("encoder", &[x.shallow_clone()], true)?.remove(0);
    let ex = if stepping_eg { ex } else { ex.detach() };
    let z = ctx.sample_z(ctx.batch_size()?)?;
    let gz = ctx.generate(&z, None)?;
    let real = ctx.run_network("discriminator", &[x, ex], true)?.remove(0);
    let fake = ctx.run_network("discriminator", &[gz, z], true)?.remove(0);
    Ok((real, fake))
}

impl LossPlugin for BiganLoss {
    const NAME: &'static str = "bigan";
    const DESCRIPTION: &'static str = "BiGAN / ALI: a joint discriminator on (x, E(x)) vs (G(z), z); E and G share the swapped loss (Donahue et al. 2017)";
    type Config = BiganLossConfig;

    fn create(_config: BiganLossConfig, _env: BuildEnv) -> Result<Self> {
        Ok(Self)
    }

    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (real, fake) = pair_logits(ctx, false)?;
        ctx.log_scalar("bigan/d_real_acc", &real.gt(0.0).to_kind(Kind::Float))?;
        ctx.log_scalar("bigan/d_fake_acc", &fake.lt(0.0).to_kind(Kind::Float))?;
        Ok((-real).softplus().mean(Kind::Float) + fake.softplus().mean(Kind::Float))
    }

    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        let (real, fake) = pair_logits(ctx, true)?;
        Ok(real.softplus().mean(Kind::Float) + (-fake).softplus().mean(Kind::Float))
    }
}
