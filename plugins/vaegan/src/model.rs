//! `vaegan`: the authors' networks with their VAE latent (`vae_latent_encoder`: affine μ and
//! log σ² of `z_dim`). `networks = "mlp"` (default) is their MNIST set (`architectures.mnist`,
//! 1024 units), described below; `networks = "conv"` their CIFAR set (`img32x32`, see
//! [`crate::conv`]).
//! - Encoder: x → [FC 1024, BN, ReLU] × 2 → (μ, log σ²).
//! - Decoder (`generator`): z → [FC 1024, BN, ReLU] × 2 → FC to the pixels, sigmoid (here
//!   `2σ − 1`, the core's [-1, 1] images).
//! - Discriminator: x → [FC 1024, BN, ReLU] × 2 → FC 1 (the logit; the code's sigmoid is in the
//!   loss). Its second output is Dis_l(x), the learned similarity's features: the output of its
//!   first `recon_depth` layers (3: the first block, 6: the second; the CIFAR run uses 6).
//!
//! Layers have biases (deeppy's `Affine`); batch norm has γ and β. Weights and biases start as
//! the code's `AutoFiller` and `bias_filler` draw them ([`crate::filler`]).
use lab_nn::prelude::*;
use lab_plugin_api::architecture::SPLIT_REFERENCE;
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Error, EvalCtx, Network, Spec, Value, VarStoreNetwork, VisualCtx};

use crate::conv;
use crate::filler::{batch_norm1d, linear};
use crate::loss::PHASE;

/// `[model.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeGanConfig {
    /// `mlp` (the MNIST networks) or `conv` (the CIFAR networks, for 28×28 or 32×32 images).
    pub networks: String,
    /// The latent's length (`n_hidden`; the code's default 128).
    pub z_dim: i64,
    /// `mlp`: units of every hidden layer.
    pub hidden: i64,
    /// `conv`: the factor on every channel and unit count (1: the reference's networks).
    pub width: f64,
    /// Layers of D whose output is the learned similarity's feature space: `mlp` 3 or 6,
    /// `conv` 1 to 15 (the CIFAR run: 6).
    pub recon_depth: i64,
}

impl Default for VaeGanConfig {
    fn default() -> Self {
        Self { networks: "mlp".into(), z_dim: 128, hidden: 1024, width: 1.0, recon_depth: 6 }
    }
}

/// The `vaegan` architecture plugin.
pub struct VaeGan {
    config: VaeGanConfig,
    env: BuildEnv,
}

/// `[FC, BN, ReLU]` blocks.
fn blocks(p: &nn::Path, input: i64, width: i64, count: usize) -> Vec<nn::SequentialT> {
    (0..count)
        .map(|i| {
            let q = p / format!("block{i}");
            nn::seq_t()
                .add(linear(&q / "fc", if i == 0 { input } else { width }, width, true))
                .add(batch_norm1d(&q / "bn", width))
                .add_fn(|x| x.relu())
        })
        .collect()
}

impl VaeGan {
    fn pixels(&self) -> i64 {
        let d = self.env.data;
        d.channels * d.height * d.width
    }

    /// The `conv` networks (see [`crate::conv`]), with the same inputs and outputs as the MLPs.
    fn build_conv(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let p = vs.root();
        let d = self.env.data;
        let (z, width) = (self.config.z_dim, self.config.width);
        match name {
            "encoder" => {
                let (body, mu, logvar) = conv::encoder(&p, d.channels, d.height, z, width);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let x = i[0].apply_t(&body, train);
                        Ok(vec![x.apply(&mu), x.apply(&logvar)])
                    },
                }))
            }
            "generator" => {
                let body = conv::decoder(&p, d.channels, d.height, z, width);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| Ok(vec![i[0].apply_t(&body, train)]),
                }))
            }
            "discriminator" => {
                let split = conv::discriminator(&p, d.channels, d.height, self.config.recon_depth as usize, width);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let features = i[0].apply_t(&split.head, train);
                        let logit = features.apply_t(&split.tail, train).view([-1]);
                        Ok(vec![logit, features.flatten(1, -1)])
                    },
                }))
            }
            other => Err(unknown_network(other)),
        }
    }
}

impl ArchitecturePlugin for VaeGan {
    const NAME: &'static str = "vaegan";
    const DESCRIPTION: &'static str =
        "VAE-GAN's encoder, decoder and discriminator with a learned similarity layer (Larsen et al. 2016)";
    type Config = VaeGanConfig;

    fn create(config: VaeGanConfig, env: BuildEnv) -> Result<Self> {
        check::positive("z_dim", config.z_dim)?;
        check::positive("hidden", config.hidden)?;
        if !(config.width > 0.0 && config.width.is_finite()) {
            return Err(Error::config(
                "width",
                format!("expected a positive factor (1: the reference), found {}", config.width),
            ));
        }
        match config.networks.as_str() {
            "mlp" if ![3, 6].contains(&config.recon_depth) => Err(Error::config(
                "recon_depth",
                format!("expected 3 (after D's first block) or 6 (after its second), found {}", config.recon_depth),
            )),
            "conv" if !(1..conv::DISCRIMINATOR_LAYERS as i64).contains(&config.recon_depth) => Err(Error::config(
                "recon_depth",
                format!(
                    "expected a layer of D from 1 to {} (the CIFAR run: 6), found {}",
                    conv::DISCRIMINATOR_LAYERS - 1,
                    config.recon_depth
                ),
            )),
            "conv" if env.data.height != env.data.width => Err(Error::config(
                "networks",
                format!(
                    "the `conv` networks need square images, and the data are {}×{}; use `mlp`",
                    env.data.height, env.data.width
                ),
            )),
            "mlp" | "conv" => Ok(Self { config, env }),
            other => Err(Error::config("networks", format!("expected `mlp` or `conv`, found `{other}`"))),
        }
    }

    fn z_dim(&self) -> i64 {
        self.config.z_dim
    }

    fn networks(&self) -> Vec<Spec> {
        ["encoder", "generator", "discriminator"].iter().map(|n| Spec::new(n, &[PHASE])).collect()
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        if self.config.networks == "conv" {
            return self.build_conv(name);
        }
        let vs = nn::VarStore::new(self.env.device());
        let p = vs.root();
        let (h, z, pixels) = (self.config.hidden, self.config.z_dim, self.pixels());
        let d = self.env.data;
        let shape = [-1, d.channels, d.height, d.width];
        match name {
            "encoder" => {
                let body = blocks(&p, pixels, h, 2);
                let (mu, logvar) = (linear(&p / "z_mu", h, z, true), linear(&p / "z_logvar", h, z, true));
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let x = body.iter().fold(i[0].flatten(1, -1), |x, b| x.apply_t(b, train));
                        Ok(vec![x.apply(&mu), x.apply(&logvar)])
                    },
                }))
            }
            "generator" => {
                let body = blocks(&p, z, h, 2);
                let out = linear(&p / "out", h, pixels, true);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let x = body.iter().fold(i[0].shallow_clone(), |x, b| x.apply_t(b, train));
                        Ok(vec![(x.apply(&out).sigmoid() * 2.0 - 1.0).reshape(shape)])
                    },
                }))
            }
            "discriminator" => {
                let body = blocks(&p, pixels, h, 2);
                let out = linear(&p / "out", h, 1, true);
                let similarity_block = (self.config.recon_depth / 3 - 1) as usize;
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let mut x = i[0].flatten(1, -1);
                        let mut features = None;
                        for (k, b) in body.iter().enumerate() {
                            x = x.apply_t(b, train);
                            if k == similarity_block {
                                features = Some(x.shallow_clone());
                            }
                        }
                        Ok(vec![x.apply(&out).view([-1]), features.expect("a block the config checked")])
                    },
                }))
            }
            other => Err(unknown_network(other)),
        }
    }

    /// Rows of real images over their reconstructions (the decoder at μ), then prior samples.
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        lab_nn::grid::reconstructions(ctx).map(Some)
    }

    fn measures(&self) -> Vec<String> {
        ["recon_mse", "sharpness_recon", "sharpness_samples"].map(String::from).to_vec()
    }

    /// The paper's claim in numbers, on up to 2,000 evaluation images: the reconstructions'
    /// pixel error (`recon_mse`, per pixel, images in [-1, 1]; the decoder at μ) and how sharp
    /// reconstructions and prior samples are against the real images (`sharpness_*`: their
    /// mean squared difference between neighbouring pixels over the real images'; 1 = the
    /// data's edge energy, below = blurrier, above = noisier).
    fn evaluate(&self, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
        let limit = ctx.count(SPLIT_REFERENCE)?.min(2000);
        let (mut error, mut pixels) = (0.0, 0.0);
        let (mut real, mut recon, mut samples) = (0.0, 0.0, 0.0);
        ctx.for_each_batch(SPLIT_REFERENCE, 250, limit, |x, _| {
            let mu = ctx.run_network("encoder", &[x.shallow_clone()])?.remove(0);
            let x_tilde = ctx.run_network("generator", &[mu])?.remove(0);
            let z = Tensor::randn([x.size()[0], self.config.z_dim], (Kind::Float, x.device()));
            let x_p = ctx.run_network("generator", &[z])?.remove(0);
            error += (&x_tilde - &x).square().sum(Kind::Double).double_value(&[]);
            pixels += x.numel() as f64;
            real += edge_energy(&x);
            recon += edge_energy(&x_tilde);
            samples += edge_energy(&x_p);
            Ok(())
        })?;
        Ok(vec![
            Value::lower("recon_mse", error / pixels.max(1.0)),
            Value::higher("sharpness_recon", recon / real),
            Value::higher("sharpness_samples", samples / real),
        ])
    }
}

/// The refusal of a network name the architecture does not build.
fn unknown_network(name: &str) -> Error {
    Error::new(format!("`vaegan` has networks `encoder`, `generator` and `discriminator`, not `{name}`"))
}

/// The summed squared differences between horizontally and between vertically neighbouring
/// pixels of a batch of images.
pub fn edge_energy(x: &Tensor) -> f64 {
    let (h, w) = (x.size()[2], x.size()[3]);
    let across = x.narrow(3, 1, w - 1) - x.narrow(3, 0, w - 1);
    let down = x.narrow(2, 1, h - 1) - x.narrow(2, 0, h - 1);
    (across.square().sum(Kind::Double) + down.square().sum(Kind::Double)).double_value(&[])
}
