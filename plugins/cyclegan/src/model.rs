//! The `cyclegan` architecture: two ResNet generators (G_AB: A → B, G_BA: B → A) and two
//! 70×70 PatchGAN discriminators (D_A judges domain A, D_B domain B), instance-normed and
//! initialised from N(0, 0.02) as the official code does. Its grid shows A → B → A and
//! B → A → B; its measures are in [`crate::evaluation`].
use std::sync::Mutex;

use lab_nn::patchgan::{PatchGan, PatchGanConfig};
use lab_nn::prelude::*;
use lab_plugin_api::{
    ArchitecturePlugin, BuildEnv, Error, EvalCtx, Network, Spec, Value, VarStoreNetwork, VisualCtx, PHASE_D, PHASE_G,
};

use crate::classifier::DomainClassifier;
use crate::config::CycleGanConfig;
use crate::generator::{GeneratorShape, ResnetGenerator};

/// G_AB, the generator the core samples from (the paper's G).
pub const GENERATOR_AB: &str = "generator";
/// G_BA (the paper's F).
pub const GENERATOR_BA: &str = "generator_ba";
/// D_A: real A against G_BA(B) (the paper's D_X).
pub const DISCRIMINATOR_A: &str = "discriminator_a";
/// D_B: real B against G_AB(A) (the paper's D_Y).
pub const DISCRIMINATOR_B: &str = "discriminator_b";

/// The `cyclegan` architecture plugin.
pub struct CycleGan {
    pub(crate) config: CycleGanConfig,
    pub(crate) env: BuildEnv,
    /// The domain classifier the measures use, trained at the first evaluation.
    pub(crate) classifier: Mutex<Option<DomainClassifier>>,
}

impl CycleGan {
    fn generator_shape(&self) -> GeneratorShape {
        GeneratorShape {
            channels: self.env.data.channels,
            ngf: self.config.ngf,
            n_blocks: self.config.n_blocks,
            norm: self.config.norm,
        }
    }

    fn patchgan_config(&self) -> PatchGanConfig {
        PatchGanConfig {
            in_channels: self.env.data.channels,
            ndf: self.config.ndf,
            n_layers: self.config.d_layers,
            norm: self.config.norm,
        }
    }
}

/// Refuses anything but `[N, C, H, W]` images of the data's `channels`, saying why: the core's
/// sample-based metrics feed a generator latents, which a translator cannot take.
fn check_images(network: &str, channels: i64, inputs: &[Tensor]) -> Result<Tensor> {
    match inputs {
        [x] if x.dim() == 4 && x.size()[1] == channels => Ok(x.shallow_clone()),
        _ => Err(Error::new(format!(
            "`cyclegan`'s {network} translates images [N, {channels}, H, W]; it was given {}. Sample-based metrics \
             (eval.metrics such as fid) feed generators latents and do not apply to it: its measures (cycle L1, \
             domain accuracy, per-direction FID with model.config.features) are logged as eval/cycle/* and \
             eval/translation/*",
            inputs.iter().map(|t| format!("{:?}", t.size())).collect::<Vec<_>>().join(", ")
        ))),
    }
}

impl ArchitecturePlugin for CycleGan {
    const NAME: &'static str = "cyclegan";
    const DESCRIPTION: &'static str = "CycleGAN (Zhu et al. 2017): two ResNet generators A → B, B → A and two 70×70 \
         PatchGAN discriminators, instance norm; needs two-domain data";
    type Config = CycleGanConfig;

    fn create(config: CycleGanConfig, env: BuildEnv) -> Result<Self> {
        config.validate(&env.data)?;
        Ok(Self { config, env, classifier: Mutex::new(None) })
    }

    /// There is no latent: the generators take images. The core still draws fixed latents of
    /// this width for its own grid, which `visualize` replaces.
    fn z_dim(&self) -> i64 {
        1
    }

    fn networks(&self) -> Vec<Spec> {
        vec![
            Spec::new(GENERATOR_AB, &[PHASE_G]),
            Spec::new(GENERATOR_BA, &[PHASE_G]),
            Spec::new(DISCRIMINATOR_A, &[PHASE_D]),
            Spec::new(DISCRIMINATOR_B, &[PHASE_D]),
        ]
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let root = vs.root();
        match name {
            GENERATOR_AB | GENERATOR_BA => {
                let g = ResnetGenerator::new(&root, self.generator_shape());
                let network = if name == GENERATOR_AB { "G_AB (generator)" } else { "G_BA (generator_ba)" };
                let channels = self.env.data.channels;
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |inputs: &[Tensor], train: bool| {
                        Ok(vec![g.forward(&check_images(network, channels, inputs)?, train)])
                    },
                }))
            }
            DISCRIMINATOR_A | DISCRIMINATOR_B => {
                let d = PatchGan::new(&root, &self.patchgan_config());
                let network = if name == DISCRIMINATOR_A { "D_A (discriminator_a)" } else { "D_B (discriminator_b)" };
                let channels = self.env.data.channels;
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |inputs: &[Tensor], train: bool| {
                        Ok(vec![d.forward(&check_images(network, channels, inputs)?, train)])
                    },
                }))
            }
            other => Err(Error::new(format!(
                "`cyclegan` has networks {GENERATOR_AB}, {GENERATOR_BA}, {DISCRIMINATOR_A} and {DISCRIMINATOR_B}, \
                 not `{other}`"
            ))),
        }
    }

    /// Rows of `n` images: real A, G_AB(A), G_BA(G_AB(A)), then real B, G_BA(B), G_AB(G_BA(B)),
    /// with `n` up to 8 (fewer when `log.samples` is small).
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        let n = (ctx.samples()? / 6).clamp(1, 8);
        let real_a = ctx.real(n)?;
        let real_b = ctx.real_b(n)?.ok_or_else(|| {
            Error::new(
                "cyclegan's grid shows both domains and needs two-domain data (data.dataset = \"unpaired-folders\")",
            )
        })?;
        let n = real_a.size()[0].min(real_b.size()[0]);
        let (real_a, real_b) = (real_a.narrow(0, 0, n), real_b.narrow(0, 0, n));
        let run =
            |name: &str, x: &Tensor| -> Result<Tensor> { Ok(ctx.run_network(name, &[x.shallow_clone()])?.remove(0)) };
        let fake_b = run(GENERATOR_AB, &real_a)?;
        let rec_a = run(GENERATOR_BA, &fake_b)?;
        let fake_a = run(GENERATOR_BA, &real_b)?;
        let rec_b = run(GENERATOR_AB, &fake_a)?;
        let rows = [real_a, fake_b, rec_a, real_b, fake_a, rec_b].map(|t| t.to_kind(Kind::Float));
        Ok(Some((Tensor::cat(&rows, 0), n)))
    }

    fn measures(&self) -> Vec<String> {
        crate::evaluation::measure_names(&self.config)
    }

    fn evaluate(&self, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
        crate::evaluation::evaluate(self, ctx)
    }
}
