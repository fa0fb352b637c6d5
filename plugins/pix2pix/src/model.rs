//! The `pix2pix` architecture: a U-Net `generator` A → B ([`crate::unet`]) stepped in phase G,
//! and a PatchGAN `discriminator` on A and B stacked on channels ([`lab_nn::patchgan`]) stepped
//! in phase D. Its grid shows inputs, outputs and targets; it measures the translation of the
//! reference split against its aligned second domain ([`crate::measure`]).
use lab_nn::{PatchGan, PatchGanConfig};
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_REFERENCE_B};
use lab_plugin_api::inputs::check_shape;
use lab_plugin_api::tch::{nn, Device, Tensor};
use lab_plugin_api::{
    ArchitecturePlugin, BuildEnv, Error, EvalCtx, Network, Result, Spec, Value, VarStoreNetwork, VisualCtx, PHASE_D,
    PHASE_G,
};

use lab_features::SetFid;

use crate::config::{Pix2pixConfig, Settings};
use crate::measure::Totals;
use crate::unet::{Mode, UNet};

pub const NAME: &str = "pix2pix";
pub const GENERATOR: &str = "generator";
pub const DISCRIMINATOR: &str = "discriminator";

/// What `evaluate` returns, in order; all on pixels in [0, 1], averaged per image.
pub const MEASURES: [&str; 4] = ["translation/l1", "translation/psnr", "translation/ssim", "translation/psnr_identity"];

/// With a feature network (`features`): G(A) against the targets B, as FID.
pub const FID: &str = "translation/fid";

/// Columns of the sample grid at most: one input/output/target triple each.
pub const GRID_COLUMNS: i64 = 8;
/// Pairs translated per evaluation batch.
const EVAL_BATCH: i64 = 64;

/// The `pix2pix` architecture plugin.
#[derive(Debug)]
pub struct Pix2pix {
    settings: Settings,
    device: Device,
}

impl Pix2pix {
    /// The resolved settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn patchgan(&self) -> PatchGanConfig {
        let s = &self.settings;
        PatchGanConfig { in_channels: s.d_in_channels(), ndf: s.ndf, n_layers: s.d_layers, norm: s.norm }
    }
}

/// The one input tensor of `network`.
fn single<'a>(network: &str, inputs: &'a [Tensor]) -> Result<&'a Tensor> {
    match inputs {
        [x] => Ok(x),
        _ => Err(Error::new(format!("{NAME} {network}: expected one input tensor, got {}", inputs.len()))),
    }
}

impl ArchitecturePlugin for Pix2pix {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str = "pix2pix (Isola et al. 2017): a U-Net from A to B and a PatchGAN on (A, B) pairs; measures L1, PSNR and SSIM of the translation";
    type Config = Pix2pixConfig;

    fn create(config: Pix2pixConfig, env: BuildEnv) -> Result<Self> {
        Ok(Self { settings: config.resolve(&env.data)?, device: env.device() })
    }

    /// G takes images, not latents.
    fn z_dim(&self) -> i64 {
        0
    }

    fn networks(&self) -> Vec<Spec> {
        vec![Spec::new(GENERATOR, &[PHASE_G]), Spec::new(DISCRIMINATOR, &[PHASE_D])]
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.device);
        let s = &self.settings;
        match name {
            GENERATOR => {
                let unet = UNet::new(&vs.root(), s);
                let image = [s.channels, s.size, s.size];
                let noise_at_test = s.noise_at_test;
                let forward = move |inputs: &[Tensor], train: bool| {
                    let a = single(GENERATOR, inputs)?;
                    check_shape(NAME, GENERATOR, "images A", a, &image)?;
                    Ok(vec![unet.forward(a, Mode::of(train, noise_at_test))])
                };
                Ok(Box::new(VarStoreNetwork { vs, forward }))
            }
            DISCRIMINATOR => {
                let d = PatchGan::new(&vs.root(), &self.patchgan());
                let pair = [s.d_in_channels(), s.size, s.size];
                let forward = move |inputs: &[Tensor], train: bool| {
                    let ab = single(DISCRIMINATOR, inputs)?;
                    check_shape(NAME, DISCRIMINATOR, "pairs (A and B stacked on channels)", ab, &pair)?;
                    Ok(vec![d.forward(ab, train)])
                };
                Ok(Box::new(VarStoreNetwork { vs, forward }))
            }
            other => {
                Err(Error::new(format!("{NAME} has no network `{other}`; valid names: {GENERATOR}, {DISCRIMINATOR}")))
            }
        }
    }

    /// Rows of inputs A, outputs G(A) and targets B, one fixed pair per column.
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        let n = ctx.samples()?.clamp(1, GRID_COLUMNS);
        let a = ctx.real(n)?;
        let b = ctx.real_b(n)?.ok_or_else(|| Error::new(needs_pairs()))?;
        let n = a.size()[0].min(b.size()[0]);
        let (a, b) = (a.narrow(0, 0, n), b.narrow(0, 0, n));
        let fake = ctx.run_network(GENERATOR, &[a.shallow_clone()])?.remove(0);
        Ok(Some((Tensor::cat(&[a, fake, b], 0), n)))
    }

    fn measures(&self) -> Vec<String> {
        let mut names: Vec<String> = MEASURES.iter().map(|m| m.to_string()).collect();
        if !self.settings.features.is_empty() {
            names.push(FID.to_string());
        }
        names
    }

    /// Translates the reference split's A images and compares them with the aligned B images.
    fn evaluate(&self, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
        let mut totals = Totals::default();
        let mut fid = (!self.settings.features.is_empty())
            .then(|| SetFid::load(&self.settings.features, self.device))
            .transpose()?;
        let mut start = 0;
        ctx.for_each_batch(SPLIT_REFERENCE, EVAL_BATCH, self.settings.eval_images, |a, _| {
            let n = a.size()[0];
            let b = ctx.images(SPLIT_REFERENCE_B, start, n).map_err(|e| {
                Error::new(format!("{NAME} measures translations against the aligned second domain: {e}"))
            })?;
            let fake = ctx.run_network(GENERATOR, &[a.shallow_clone()])?.remove(0);
            totals.add(&a, &fake, &b);
            if let Some(fid) = fid.as_mut() {
                fid.add_generated(&fake)?;
                fid.add_real(&b)?;
            }
            start += n;
            Ok(())
        })?;
        let (l1, psnr, ssim, psnr_identity) = totals.means();
        let mut values = vec![
            Value::lower(MEASURES[0], l1),
            Value::higher(MEASURES[1], psnr),
            Value::higher(MEASURES[2], ssim),
            Value::higher(MEASURES[3], psnr_identity),
        ];
        if let Some(fid) = fid {
            values.push(Value::lower(FID, fid.distance()?));
        }
        Ok(values)
    }
}

/// The error for data without a second domain.
pub fn needs_pairs() -> String {
    "pix2pix needs paired two-domain data: set data.dataset = \"paired-folder\" and data.path to a folder of \
     images holding A and B side by side (A on the left)"
        .to_string()
}
