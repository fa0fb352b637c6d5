//! `infogan`: the networks of the official MNIST experiment (paper App. C.1).
//! - G: FC 1024, BN, ReLU → FC 128·s·s, BN, ReLU → deconv 4×4/2 to 64, BN, ReLU → deconv 4×4/2
//!   to the image's channels (s = side/4: 7 for 28×28). The official output is a Bernoulli
//!   mean (sigmoid); here tanh, the same function rescaled to the core's [-1, 1] images.
//! - D trunk: conv 4×4/2 64, lReLU → conv 4×4/2 128, BN, lReLU → FC 1024, BN, lReLU. D's head:
//!   FC 1 (a logit). Its outputs are `[logit, trunk features]`.
//! - `q_head` on the trunk's features: FC 128, BN, lReLU → FC to the codes (each categorical's
//!   logits, then the continuous codes' means; σ fixed to 1 as the MNIST launcher's
//!   `fix_std = True`). Stepped in phase D, by D's optimizer, as in the official code.
//!
//! Weights from N(0, 0.02), biases 0; BN γ 1, β 0, ε 1e-5, running-average momentum 0.1 (TF's
//! decay 0.9). Layers followed by BN have no bias. The leak is the code's 0.01 (the paper says
//! 0.1; `leak` sets it).
use lab_nn::prelude::*;
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_TRAIN};
use lab_plugin_api::{
    ArchitecturePlugin, BuildEnv, Error, EvalCtx, Network, Spec, Value, VarStoreNetwork, VisualCtx, PHASE_D, PHASE_G,
};

use crate::cluster;
use crate::latent::Codes;
use crate::loss::MutualInformation;

/// `[model.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfoGanConfig {
    /// Uniform noise values.
    pub noise: i64,
    /// Classes of each categorical code.
    pub categorical: Vec<i64>,
    /// Continuous codes, U(−1, 1).
    pub continuous: i64,
    /// Slope of D's and Q's leaky ReLUs.
    pub leak: f64,
    /// Images of each split used to measure the code's accuracy (train: to map categories to
    /// labels; reference: to score), and generated samples for the MI bound.
    pub eval_count: i64,
}

impl Default for InfoGanConfig {
    fn default() -> Self {
        Self { noise: 62, categorical: vec![10], continuous: 2, leak: 0.01, eval_count: 10_000 }
    }
}

/// The `infogan` architecture plugin.
pub struct InfoGan {
    config: InfoGanConfig,
    codes: Codes,
    env: BuildEnv,
    /// The k-means baseline's accuracy, by the split sizes it was computed on: it depends on the
    /// data and the evaluation's seed only, never on the model, so every evaluation of a run
    /// would compute the same number again.
    kmeans_accuracy: std::sync::Mutex<Option<((i64, i64), f64)>>,
}

fn normal() -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev: 0.02 }
}

fn linear(p: &nn::Path, name: &str, input: i64, output: i64, bias: bool) -> nn::Linear {
    nn::linear(
        p / name,
        input,
        output,
        nn::LinearConfig { ws_init: normal(), bs_init: Some(nn::Init::Const(0.0)), bias },
    )
}

fn conv(p: &nn::Path, name: &str, input: i64, output: i64, bias: bool) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride: 2,
        padding: 1,
        bias,
        ws_init: normal(),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p / name, input, output, 4, config)
}

fn deconv(p: &nn::Path, name: &str, input: i64, output: i64, bias: bool) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig {
        stride: 2,
        padding: 1,
        bias,
        ws_init: normal(),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv_transpose2d(p / name, input, output, 4, config)
}

impl InfoGan {
    /// The generator's first feature map's side: the image's side / 4.
    fn base(&self) -> i64 {
        self.env.data.height / 4
    }

    fn generator(&self, p: &nn::Path) -> nn::SequentialT {
        let (b, c) = (self.base(), self.env.data.channels);
        nn::seq_t()
            .add(linear(p, "fc1", self.codes.width(), 1024, false))
            .add(nn::batch_norm1d(p / "bn1", 1024, reference_batch_norm(1e-5)))
            .add_fn(|x| x.relu())
            .add(linear(p, "fc2", 1024, 128 * b * b, false))
            .add(nn::batch_norm1d(p / "bn2", 128 * b * b, reference_batch_norm(1e-5)))
            .add_fn(move |x| x.relu().reshape([-1, 128, b, b]))
            .add(deconv(p, "up1", 128, 64, false))
            .add(nn::batch_norm2d(p / "bn3", 64, reference_batch_norm(1e-5)))
            .add_fn(|x| x.relu())
            .add(deconv(p, "up2", 64, c, true))
            .add_fn(|x| x.tanh())
    }

    fn trunk(&self, p: &nn::Path) -> nn::SequentialT {
        let (b, c, leak) = (self.base(), self.env.data.channels, self.config.leak);
        nn::seq_t()
            .add(conv(p, "conv1", c, 64, true))
            .add(leaky_relu(leak))
            .add(conv(p, "conv2", 64, 128, false))
            .add(nn::batch_norm2d(p / "bn2", 128, reference_batch_norm(1e-5)))
            .add(leaky_relu(leak))
            .add_fn(|x| x.flatten(1, -1))
            .add(linear(p, "fc3", 128 * b * b, 1024, false))
            .add(nn::batch_norm1d(p / "bn3", 1024, reference_batch_norm(1e-5)))
            .add(leaky_relu(leak))
    }

    fn q_head(&self, p: &nn::Path) -> nn::SequentialT {
        let leak = self.config.leak;
        nn::seq_t()
            .add(linear(p, "fc1", 1024, 128, false))
            .add(nn::batch_norm1d(p / "bn1", 128, reference_batch_norm(1e-5)))
            .add(leaky_relu(leak))
            .add(linear(p, "out", 128, self.codes.code_width(), true))
    }

    /// Q's prediction for images: D's trunk, then `q_head`.
    fn predict(ctx: &EvalCtx<'_>, x: &Tensor) -> Result<Tensor> {
        let features = ctx.run_network("discriminator", &[x.shallow_clone()])?.remove(1);
        Ok(ctx.run_network("q_head", &[features])?.remove(0))
    }

    /// The first categorical code's most likely class for each image of `split` (first `n`).
    fn categories(&self, ctx: &EvalCtx<'_>, split: &str, n: i64) -> Result<(Tensor, Option<Tensor>)> {
        let (k, mut classes, mut labels) = (self.codes.categorical[0], Vec::new(), Vec::new());
        ctx.for_each_batch(split, 500, n, |x, y| {
            classes.push(Self::predict(ctx, &x)?.narrow(1, 0, k).argmax(1, false));
            labels.extend(y);
            Ok(())
        })?;
        let labels = (!labels.is_empty()).then(|| Tensor::cat(&labels, 0));
        Ok((Tensor::cat(&classes, 0), labels))
    }

    /// Pixels of the first `n` images of `split`, flat, with their labels.
    fn pixels(ctx: &EvalCtx<'_>, split: &str, n: i64) -> Result<(Tensor, Tensor)> {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        ctx.for_each_batch(split, 1000, n, |x, y| {
            xs.push(x.flatten(1, -1));
            ys.extend(y);
            Ok(())
        })?;
        Ok((Tensor::cat(&xs, 0), Tensor::cat(&ys, 0)))
    }
}

impl ArchitecturePlugin for InfoGan {
    const NAME: &'static str = "infogan";
    const DESCRIPTION: &'static str =
        "InfoGAN's MNIST networks: G, D and a Q head on D's trunk, structured latent codes (Chen et al. 2016)";
    type Config = InfoGanConfig;

    fn create(config: InfoGanConfig, env: BuildEnv) -> Result<Self> {
        check::positive("noise", config.noise)?;
        check::at_least("continuous", config.continuous, 0)?;
        if config.categorical.is_empty() || config.categorical.iter().any(|&k| k < 2) {
            return Err(Error::config(
                "categorical",
                format!("expected a list of class counts of at least 2, found {:?}", config.categorical),
            ));
        }
        check::positive("eval_count", config.eval_count)?;
        let d = env.data;
        if d.height != d.width || d.height % 4 != 0 || d.height < 8 {
            return Err(Error::new(format!(
                "`infogan` needs square images whose side is a multiple of 4 (28 or 32); the data are {}×{}",
                d.height, d.width
            )));
        }
        let codes =
            Codes { noise: config.noise, categorical: config.categorical.clone(), continuous: config.continuous };
        Ok(Self { config, codes, env, kmeans_accuracy: Default::default() })
    }

    fn z_dim(&self) -> i64 {
        self.codes.width()
    }

    fn networks(&self) -> Vec<Spec> {
        vec![
            Spec::new("generator", &[PHASE_G]),
            Spec::new("discriminator", &[PHASE_D]),
            Spec::new("q_head", &[PHASE_D]),
        ]
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let root = vs.root();
        match name {
            "generator" => {
                let g = self.generator(&root);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| Ok(vec![i[0].apply_t(&g, train)]),
                }))
            }
            "discriminator" => {
                let trunk = self.trunk(&root);
                let head = linear(&root, "head", 1024, 1, true);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let features = i[0].apply_t(&trunk, train);
                        Ok(vec![features.apply(&head).view([-1]), features])
                    },
                }))
            }
            "q_head" => {
                let q = self.q_head(&root);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| Ok(vec![i[0].apply_t(&q, train)]),
                }))
            }
            other => Err(Error::new(format!(
                "`infogan` has networks `generator`, `discriminator` and `q_head`, not `{other}`"
            ))),
        }
    }

    fn sample_latent(&self, n: i64) -> Result<Option<Tensor>> {
        Ok(Some(self.codes.sample(n, self.env.device())))
    }

    /// The paper's traversals (the official `visualize_all_factors`): ten rows of fixed noise
    /// with the first categorical code 0..9 across, continuous codes 0; then, for each
    /// continuous code, five rows (categories 0, 2, 4, 6, 8) sweeping it from −2 to 2.
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        let k = self.codes.categorical[0];
        let device = self.env.device();
        let z = ctx.fixed_latent()?;
        let rows = z.size()[0].min(k);
        let noise = z.narrow(1, 0, self.codes.noise).narrow(0, 0, rows);
        let zeros = Tensor::zeros([1, self.codes.continuous], (Kind::Float, device));
        let mut blocks = Vec::new();
        for r in 0..rows {
            let n = noise.narrow(0, r, 1).repeat([k, 1]);
            let class = Tensor::arange(k, (Kind::Int64, device));
            blocks.push(self.codes.compose(&n, &class, &zeros.repeat([k, 1])));
        }
        let sweep = Tensor::linspace(-2.0, 2.0, k, (Kind::Float, device));
        for c in 0..self.codes.continuous {
            for r in 0..rows.min(5) {
                let n = noise.narrow(0, r, 1).repeat([k, 1]);
                let class = Tensor::full([k], (2 * r) % k, (Kind::Int64, device));
                let cont = zeros.repeat([k, 1]);
                cont.narrow(1, c, 1).copy_(&sweep.unsqueeze(1));
                blocks.push(self.codes.compose(&n, &class, &cont));
            }
        }
        let images = ctx.run_network("generator", &[Tensor::cat(&blocks, 0)])?.remove(0);
        Ok(Some((images, k)))
    }

    fn measures(&self) -> Vec<String> {
        ["mi_categorical", "mi_continuous", "code_accuracy", "kmeans_accuracy"].map(String::from).to_vec()
    }

    /// - `mi_categorical`, `mi_continuous`: the MI lower bound L_I (nats) on `eval_count` fresh
    ///   samples; ln 10 = 2.30 is the categorical ceiling.
    /// - `code_accuracy`: the first categorical code as a classifier: each category is mapped
    ///   to the label most of the training images Q puts in it have, then scored on the
    ///   evaluation split (the paper: 5% error on MNIST).
    /// - `kmeans_accuracy`: the same protocol for k-means (k = the code's classes) on the same
    ///   training pixels, the baseline the code should beat.
    fn evaluate(&self, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
        let n = self.config.eval_count;
        let (mut categorical, mut continuous, mut batches) = (0.0, 0.0, 0.0);
        let mut left = n;
        while left > 0 {
            let b = left.min(500);
            let z = self.codes.sample(b, self.env.device());
            let x = ctx.run_network("generator", &[z.shallow_clone()])?.remove(0);
            let q = {
                let features = ctx.run_network("discriminator", &[x])?.remove(1);
                ctx.run_network("q_head", &[features])?.remove(0)
            };
            let mi =
                MutualInformation::of(&q, &self.codes.codes_of(&z), &self.codes.categorical, self.codes.continuous);
            categorical += mi.categorical.double_value(&[]);
            continuous += mi.continuous.double_value(&[]);
            batches += 1.0;
            left -= b;
        }
        let mut values = vec![
            Value::higher("mi_categorical", categorical / batches),
            Value::higher("mi_continuous", continuous / batches),
        ];
        let k = self.codes.categorical[0];
        let classes = ctx.num_classes()?.max(k);
        let (train_codes, train_labels) = self.categories(ctx, SPLIT_TRAIN, n)?;
        let (test_codes, test_labels) = self.categories(ctx, SPLIT_REFERENCE, n)?;
        if let (Some(train_labels), Some(test_labels)) = (train_labels, test_labels) {
            let mapping = cluster::majority_mapping(&train_codes, &train_labels, k, classes);
            values.push(Value::higher("code_accuracy", cluster::mapped_accuracy(&test_codes, &test_labels, &mapping)));
            let sizes = (ctx.count(SPLIT_TRAIN)?.min(n), ctx.count(SPLIT_REFERENCE)?.min(n));
            let mut cached = self.kmeans_accuracy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let accuracy = match *cached {
                Some((for_sizes, accuracy)) if for_sizes == sizes => accuracy,
                _ => {
                    let (train_x, train_y) = Self::pixels(ctx, SPLIT_TRAIN, n)?;
                    let (test_x, test_y) = Self::pixels(ctx, SPLIT_REFERENCE, n)?;
                    let centroids = cluster::kmeans(&train_x, k, 30);
                    let mapping =
                        cluster::majority_mapping(&cluster::nearest(&train_x, &centroids), &train_y, k, classes);
                    let accuracy = cluster::mapped_accuracy(&cluster::nearest(&test_x, &centroids), &test_y, &mapping);
                    *cached = Some((sizes, accuracy));
                    accuracy
                }
            };
            values.push(Value::higher("kmeans_accuracy", accuracy));
        }
        Ok(values)
    }
}
