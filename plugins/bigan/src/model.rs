//! `bigan`: the MLP networks of jeffdonahue/bigan's MNIST run (`train_mnist.sh`:
//! `--gen_net deconvnet_mnist_mlp --encode_net mnist_mlp --discrim_net mnist_mlp --nogain
//! --nobias`). Fully connected layers carry no bias and batch norm has no gain or bias, as
//! those flags set; the code's weight reparameterisation is not reproduced (plain weights from
//! N(0, 0.02)).
//! - G: z (50, U(−1, 1)) → FC 1024, BN, ReLU → FC 1024 + FC(z) (z re-injected, the code's
//!   `apply_cond`), BN, ReLU → FC 784, sigmoid (here `2σ − 1`, the core's [-1, 1] images).
//! - E: x → FC 1024, lReLU 0.2 → FC 1024, BN, lReLU → FC 50.
//! - D(x, z): x → FC 1024, lReLU → FC 1024 + FC(z), BN, lReLU → FC 1 (the logit).
use lab_nn::prelude::*;
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_TRAIN};
use lab_plugin_api::{
    ArchitecturePlugin, BuildEnv, Error, EvalCtx, Network, Spec, Value, VarStoreNetwork, VisualCtx, PHASE_D, PHASE_G,
};

use crate::probe::{linear_probe_accuracy, nearest_neighbour_accuracy};

/// `[model.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BiganConfig {
    /// z's length (the code's `u-50`).
    pub z_dim: i64,
    /// Width of every hidden layer (the code's `size * 16` = 1024).
    pub hidden: i64,
    /// Training images the 1-NN probe remembers and evaluation images it classifies.
    pub eval_count: i64,
}

impl Default for BiganConfig {
    fn default() -> Self {
        Self { z_dim: 50, hidden: 1024, eval_count: 10_000 }
    }
}

/// The `bigan` architecture plugin.
pub struct Bigan {
    config: BiganConfig,
    env: BuildEnv,
}

fn fc(p: &nn::Path, name: &str, input: i64, output: i64) -> nn::Linear {
    nn::linear(
        p / name,
        input,
        output,
        nn::LinearConfig { ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.02 }, bs_init: None, bias: false },
    )
}

/// Batch norm without gain or bias (`--nogain --nobias`).
fn bn(p: &nn::Path, name: &str, width: i64) -> nn::BatchNorm {
    nn::batch_norm1d(p / name, width, nn::BatchNormConfig { affine: false, ..Default::default() })
}

impl Bigan {
    fn pixels(&self) -> i64 {
        let d = self.env.data;
        d.channels * d.height * d.width
    }

    /// Features of images of a split: the first `n`, E's output, with their labels.
    fn encode(
        encode: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
        ctx: &EvalCtx<'_>,
        split: &str,
        n: i64,
    ) -> Result<(Tensor, Tensor)> {
        let (mut features, mut labels) = (Vec::new(), Vec::new());
        ctx.for_each_batch(split, 500, n, |x, y| {
            features.push(encode(&x)?);
            labels.extend(y);
            Ok(())
        })?;
        if labels.is_empty() {
            return Err(Error::new("the encoder's probe needs class labels; this dataset has none"));
        }
        Ok((Tensor::cat(&features, 0), Tensor::cat(&labels, 0)))
    }
}

impl ArchitecturePlugin for Bigan {
    const NAME: &'static str = "bigan";
    const DESCRIPTION: &'static str =
        "BiGAN's MLP generator, encoder and joint (x, z) discriminator (Donahue et al. 2017)";
    type Config = BiganConfig;

    fn create(config: BiganConfig, env: BuildEnv) -> Result<Self> {
        check::positive("z_dim", config.z_dim)?;
        check::positive("hidden", config.hidden)?;
        check::positive("eval_count", config.eval_count)?;
        Ok(Self { config, env })
    }

    fn z_dim(&self) -> i64 {
        self.config.z_dim
    }

    fn networks(&self) -> Vec<Spec> {
        // E is stepped with G: they share the (label-swapped) loss.
        vec![
            Spec::new("generator", &[PHASE_G]),
            Spec::new("encoder", &[PHASE_G]),
            Spec::new("discriminator", &[PHASE_D]),
        ]
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let p = vs.root();
        let (h, z, pixels) = (self.config.hidden, self.config.z_dim, self.pixels());
        let d = self.env.data;
        let shape = [-1, d.channels, d.height, d.width];
        match name {
            "generator" => {
                let (fc1, bn1, fc2, cond2, bn2, out) = (
                    fc(&p, "fc1", z, h),
                    bn(&p, "bn1", h),
                    fc(&p, "fc2", h, h),
                    fc(&p, "cond2", z, h),
                    bn(&p, "bn2", h),
                    fc(&p, "out", h, pixels),
                );
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let z = &i[0];
                        let a = z.apply(&fc1).apply_t(&bn1, train).relu();
                        let b = (a.apply(&fc2) + z.apply(&cond2)).apply_t(&bn2, train).relu();
                        Ok(vec![(b.apply(&out).sigmoid() * 2.0 - 1.0).reshape(shape)])
                    },
                }))
            }
            "encoder" => {
                let (fc1, fc2, bn2, out) =
                    (fc(&p, "fc1", pixels, h), fc(&p, "fc2", h, h), bn(&p, "bn2", h), fc(&p, "out", h, z));
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let a = i[0].flatten(1, -1).apply(&fc1).apply(&leaky_relu(0.2));
                        let b = a.apply(&fc2).apply_t(&bn2, train).apply(&leaky_relu(0.2));
                        Ok(vec![b.apply(&out)])
                    },
                }))
            }
            "discriminator" => {
                let (fc1, fc2, cond2, bn2, out) = (
                    fc(&p, "fc1", pixels, h),
                    fc(&p, "fc2", h, h),
                    fc(&p, "cond2", z, h),
                    bn(&p, "bn2", h),
                    fc(&p, "out", h, 1),
                );
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let [x, z] = i else {
                            return Err(Error::new("the `bigan` discriminator takes [x, z]: use the `bigan` loss"));
                        };
                        let a = x.flatten(1, -1).apply(&fc1).apply(&leaky_relu(0.2));
                        let b = (a.apply(&fc2) + z.apply(&cond2)).apply_t(&bn2, train).apply(&leaky_relu(0.2));
                        Ok(vec![b.apply(&out).view([-1])])
                    },
                }))
            }
            other => Err(Error::new(format!(
                "`bigan` has networks `generator`, `encoder` and `discriminator`, not `{other}`"
            ))),
        }
    }

    /// z ~ U(−1, 1).
    fn sample_latent(&self, n: i64) -> Result<Option<Tensor>> {
        Ok(Some(Tensor::rand([n, self.config.z_dim], (Kind::Float, self.env.device())) * 2.0 - 1.0))
    }

    /// Rows of real images over their reconstructions G(E(x)), then samples G(z).
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        lab_nn::grid::reconstructions(ctx).map(Some)
    }

    fn measures(&self) -> Vec<String> {
        ["probe_1nn", "probe_1nn_random_encoder", "probe_linear", "probe_linear_random_encoder", "reconstruction_ratio"]
            .map(String::from)
            .to_vec()
    }

    /// - `probe_1nn`: 1-NN accuracy of E(x) on the evaluation split, with `eval_count` encoded
    ///   training images as memory (the paper's Table 1 probe);
    /// - `probe_1nn_random_encoder`: the same probe through a freshly initialised encoder (a
    ///   random projection, which 1-NN finds nearly as good as pixels);
    /// - `probe_linear`, `probe_linear_random_encoder`: logistic regression on the same features;
    /// - `reconstruction_ratio`: mean ‖x − G(E(x))‖ over mean ‖x − G(E(x'))‖ for a random
    ///   other image x' (the official log's EGr / EGr_b): below 1, reconstructions keep what
    ///   is particular to each image.
    fn evaluate(&self, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
        let n = self.config.eval_count;
        let mut trained =
            |x: &Tensor| -> Result<Tensor> { Ok(ctx.run_network("encoder", &[x.shallow_clone()])?.remove(0)) };
        let (memory, memory_labels) = Self::encode(&mut trained, ctx, SPLIT_TRAIN, n)?;
        let (query, query_labels) = Self::encode(&mut trained, ctx, SPLIT_REFERENCE, n)?;
        let probe = nearest_neighbour_accuracy(&memory, &memory_labels, &query, &query_labels);
        let linear = linear_probe_accuracy(&memory, &memory_labels, &query, &query_labels, 300);

        let mut fresh = self.build("encoder")?;
        let mut random = |x: &Tensor| -> Result<Tensor> {
            Ok(tch::no_grad(|| fresh.forward(&[x.shallow_clone()], false))?.remove(0))
        };
        let (memory, memory_labels) = Self::encode(&mut random, ctx, SPLIT_TRAIN, n)?;
        let (query, query_labels) = Self::encode(&mut random, ctx, SPLIT_REFERENCE, n)?;
        let probe_random = nearest_neighbour_accuracy(&memory, &memory_labels, &query, &query_labels);
        let linear_random = linear_probe_accuracy(&memory, &memory_labels, &query, &query_labels, 300);

        let (mut own, mut other, mut batches) = (0.0, 0.0, 0.0);
        ctx.for_each_batch(SPLIT_REFERENCE, 500, n.min(2000), |x, _| {
            let z = ctx.run_network("encoder", &[x.shallow_clone()])?.remove(0);
            let recon = ctx.run_network("generator", &[z])?.remove(0);
            let shuffled = recon.index_select(0, &Tensor::randperm(x.size()[0], (Kind::Int64, x.device())));
            // Pixels in [0, 1], as the official code measures.
            let distance = |a: &Tensor| {
                ((&x - a) * 0.5).flatten(1, -1).norm_scalaropt_dim(2.0, [1], false).mean(Kind::Float).double_value(&[])
            };
            own += distance(&recon);
            other += distance(&shuffled);
            batches += 1.0;
            Ok(())
        })?;
        Ok(vec![
            Value::higher("probe_1nn", probe),
            Value::higher("probe_1nn_random_encoder", probe_random),
            Value::higher("probe_linear", linear),
            Value::higher("probe_linear_random_encoder", linear_random),
            Value::lower("reconstruction_ratio", own / other.max(1e-12)),
        ])
    }
}
