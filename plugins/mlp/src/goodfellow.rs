//! The fully connected GAN of Goodfellow et al. 2014 (`gan-mlp`) and its conditional form by
//! Mirza & Osindero 2014 (`cgan-mlp`), for flat images (MNIST's 784 pixels).
//! - `gan-mlp` (goodfeli/adversarial `mnist.yaml`): z of 100 from U(−√3, √3) (the code's
//!   `uniform` noise: unit variance); G: FC 1200 ReLU → FC 1200 ReLU → FC to the pixels,
//!   sigmoid; D: maxout 240 units × 5 pieces → maxout 240 × 5 → one logit. D's dropout keeps an
//!   input pixel with p = 0.8 and a hidden unit with p = 0.5 (in training only, rescaled).
//!   Weights U(±0.05) in G and U(±0.005) in D, biases 0. (The code also initialises G's output
//!   bias from the data's pixel means; an architecture does not see the data, so it starts at 0.)
//! - `cgan-mlp` (the paper's §4.1): z of 100 from U(0, 1) and y one-hot; G: z → 200 ReLU and
//!   y → 1000 ReLU, joined → 1200 ReLU → the pixels, sigmoid, dropout 0.5 on its hidden layers;
//!   D: x → maxout 240 × 5 and y → maxout 50 × 5, joined → maxout 240 × 4 → one logit, dropout
//!   0.5 on the hidden layers. The paper gives no initialisation: PyTorch's default is used
//!   (`init = "torch"`); `gan-mlp`'s pylearn2 ranges (`init = "pylearn2"`) collapse G.
//!
//! The sigmoid outputs p in [0, 1] become the core's [-1, 1] images as `2p − 1`.
use lab_nn::prelude::*;
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Error, Network, Spec, VarStoreNetwork};

/// A maxout layer: `units` outputs, each the largest of `pieces` affine maps.
#[derive(Debug)]
pub struct Maxout {
    linear: nn::Linear,
    units: i64,
    pieces: i64,
}

impl Maxout {
    pub fn new(p: &nn::Path, input: i64, units: i64, pieces: i64, init: f64) -> Self {
        Self::from_linear(uniform_linear(p, input, units * pieces, init), units, pieces)
    }

    /// A maxout layer on an existing affine map of `units * pieces` outputs.
    pub fn from_linear(linear: nn::Linear, units: i64, pieces: i64) -> Self {
        Self { linear, units, pieces }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.linear).view([-1, self.units, self.pieces]).amax(&[2i64][..], false)
    }

    /// The affine maps, pieces interleaved per unit (for tests).
    pub fn linear_for_tests(&self) -> &nn::Linear {
        &self.linear
    }
}

/// A linear layer with weights from U(±irange) and zero biases (pylearn2's `irange`).
fn uniform_linear(p: &nn::Path, input: i64, output: i64, irange: f64) -> nn::Linear {
    nn::linear(
        p,
        input,
        output,
        nn::LinearConfig {
            ws_init: nn::Init::Uniform { lo: -irange, up: irange },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    )
}

fn pixels(env: &BuildEnv) -> i64 {
    env.data.channels * env.data.height * env.data.width
}

fn image(p: Tensor, env: &BuildEnv) -> Tensor {
    let d = env.data;
    (p * 2.0 - 1.0).reshape([-1, d.channels, d.height, d.width])
}

/// `[model.config]` of `gan-mlp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GanMlpConfig {
    pub z_dim: i64,
    pub g_hidden: i64,
    pub d_units: i64,
    pub d_pieces: i64,
    /// Dropout's keep probabilities in D: for the input pixels and for hidden units.
    pub d_input_keep: f64,
    pub d_hidden_keep: f64,
}

impl Default for GanMlpConfig {
    fn default() -> Self {
        Self { z_dim: 100, g_hidden: 1200, d_units: 240, d_pieces: 5, d_input_keep: 0.8, d_hidden_keep: 0.5 }
    }
}

/// The `gan-mlp` architecture plugin.
pub struct GanMlp {
    config: GanMlpConfig,
    env: BuildEnv,
}

fn check_keep(key: &str, p: f64) -> Result<()> {
    if p > 0.0 && p <= 1.0 {
        Ok(())
    } else {
        Err(Error::config(key, format!("expected a keep probability in (0, 1], found {p}")))
    }
}

impl ArchitecturePlugin for GanMlp {
    const NAME: &'static str = "gan-mlp";
    const DESCRIPTION: &'static str =
        "The original GAN's MLP generator and maxout discriminator with dropout (Goodfellow et al. 2014)";
    type Config = GanMlpConfig;

    fn create(config: GanMlpConfig, env: BuildEnv) -> Result<Self> {
        for (key, v) in [
            ("z_dim", config.z_dim),
            ("g_hidden", config.g_hidden),
            ("d_units", config.d_units),
            ("d_pieces", config.d_pieces),
        ] {
            check::positive(key, v)?;
        }
        check_keep("d_input_keep", config.d_input_keep)?;
        check_keep("d_hidden_keep", config.d_hidden_keep)?;
        Ok(Self { config, env })
    }

    fn z_dim(&self) -> i64 {
        self.config.z_dim
    }

    fn networks(&self) -> Vec<Spec> {
        lab_nn::gan::networks()
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let p = vs.root();
        let c = self.config.clone();
        let env = self.env;
        match name {
            "generator" => {
                let fc1 = uniform_linear(&(&p / "fc1"), c.z_dim, c.g_hidden, 0.05);
                let fc2 = uniform_linear(&(&p / "fc2"), c.g_hidden, c.g_hidden, 0.05);
                let out = uniform_linear(&(&p / "out"), c.g_hidden, pixels(&env), 0.05);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], _| {
                        Ok(vec![image(i[0].apply(&fc1).relu().apply(&fc2).relu().apply(&out).sigmoid(), &env)])
                    },
                }))
            }
            "discriminator" => {
                let h1 = Maxout::new(&(&p / "maxout1"), pixels(&env), c.d_units, c.d_pieces, 0.005);
                let h2 = Maxout::new(&(&p / "maxout2"), c.d_units, c.d_units, c.d_pieces, 0.005);
                let out = uniform_linear(&(&p / "out"), c.d_units, 1, 0.005);
                let (keep_in, keep_hidden) = (c.d_input_keep, c.d_hidden_keep);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let x = i[0].flatten(1, -1).dropout(1.0 - keep_in, train);
                        let a = h1.forward(&x).dropout(1.0 - keep_hidden, train);
                        let b = h2.forward(&a).dropout(1.0 - keep_hidden, train);
                        Ok(vec![b.apply(&out).view([-1]), b])
                    },
                }))
            }
            other => Err(Error::new(format!("`gan-mlp` has networks `generator` and `discriminator`, not `{other}`"))),
        }
    }

    /// U(−√3, √3): the code's `uniform` noise, of unit variance.
    fn sample_latent(&self, n: i64) -> Result<Option<Tensor>> {
        let r = 3f64.sqrt();
        Ok(Some((Tensor::rand([n, self.config.z_dim], (Kind::Float, self.env.device())) * 2.0 - 1.0) * r))
    }
}

/// `[model.config]` of `cgan-mlp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CganMlpConfig {
    pub z_dim: i64,
    /// Dropout's drop probability on D's hidden layers.
    pub dropout: f64,
    /// Dropout's drop probability on G's hidden layers (the paper: 0.5, as D's).
    pub generator_dropout: f64,
    /// `"unit"`: z from U(0, 1), the paper's "unit hypercube"; `"centred"`: U(−√3, √3), the
    /// original GAN code's unit-variance noise.
    pub noise: String,
    /// `"torch"` (default): PyTorch's, U(±1/√fan_in) for weights and biases. `"pylearn2"`:
    /// `gan-mlp`'s U(±0.05) in G and U(±0.005) in D with zero biases, under which this
    /// network's G starts almost blind to z and y (a change of label moves its pixels by 0.005
    /// on average, against 0.13 under `"torch"`) and collapses to one image for every (z, y) within
    /// 1,000 steps at the paper's settings. The paper gives no initialisation.
    pub init: String,
}

impl Default for CganMlpConfig {
    fn default() -> Self {
        Self { z_dim: 100, dropout: 0.5, generator_dropout: 0.5, noise: "unit".into(), init: "torch".into() }
    }
}

/// The `cgan-mlp` architecture plugin.
pub struct CganMlp {
    config: CganMlpConfig,
    env: BuildEnv,
}

impl ArchitecturePlugin for CganMlp {
    const NAME: &'static str = "cgan-mlp";
    const DESCRIPTION: &'static str =
        "The conditional GAN's MLP generator and maxout discriminator (Mirza & Osindero 2014)";
    type Config = CganMlpConfig;

    fn create(config: CganMlpConfig, env: BuildEnv) -> Result<Self> {
        check::positive("z_dim", config.z_dim)?;
        for (key, p) in [("dropout", config.dropout), ("generator_dropout", config.generator_dropout)] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(key, format!("expected a drop probability in [0, 1), found {p}")));
            }
        }
        check::one_of("noise", &config.noise, &["unit", "centred"])?;
        check::one_of("init", &config.init, &["pylearn2", "torch"])?;
        if env.data.num_classes < 2 {
            return Err(Error::new("`cgan-mlp` is class-conditional: it needs labelled data (Fashion-MNIST, MNIST, CIFAR-10, a labelled image folder)"));
        }
        Ok(Self { config, env })
    }

    fn z_dim(&self) -> i64 {
        self.config.z_dim
    }

    fn num_classes(&self) -> i64 {
        self.env.data.num_classes
    }

    fn networks(&self) -> Vec<Spec> {
        lab_nn::gan::networks()
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let p = vs.root();
        let (env, drop, k) = (self.env, self.config.dropout, self.env.data.num_classes);
        let torch_init = self.config.init == "torch";
        let lin = |p: &nn::Path, input: i64, output: i64, irange: f64| {
            if torch_init {
                nn::linear(p, input, output, Default::default())
            } else {
                uniform_linear(p, input, output, irange)
            }
        };
        let labels = move |i: &[Tensor]| -> Result<Tensor> {
            let y = i.get(1).ok_or_else(|| Error::new("`cgan-mlp` networks take [input, labels]"))?;
            Ok(y.one_hot(k).to_kind(Kind::Float))
        };
        match name {
            "generator" => {
                let g_drop = self.config.generator_dropout;
                let z_fc = lin(&(&p / "z_fc"), self.config.z_dim, 200, 0.05);
                let y_fc = lin(&(&p / "y_fc"), k, 1000, 0.05);
                let joint = lin(&(&p / "joint"), 1200, 1200, 0.05);
                let out = lin(&(&p / "out"), 1200, pixels(&env), 0.05);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let y = labels(i)?;
                        let h =
                            Tensor::cat(&[i[0].apply(&z_fc).relu(), y.apply(&y_fc).relu()], 1).dropout(g_drop, train);
                        let h = h.apply(&joint).relu().dropout(g_drop, train);
                        Ok(vec![image(h.apply(&out).sigmoid(), &env)])
                    },
                }))
            }
            "discriminator" => {
                let x_maxout = Maxout::from_linear(lin(&(&p / "x_maxout"), pixels(&env), 240 * 5, 0.005), 240, 5);
                let y_maxout = Maxout::from_linear(lin(&(&p / "y_maxout"), k, 50 * 5, 0.005), 50, 5);
                let joint = Maxout::from_linear(lin(&(&p / "joint"), 290, 240 * 4, 0.005), 240, 4);
                let out = lin(&(&p / "out"), 240, 1, 0.005);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], train| {
                        let y = labels(i)?;
                        let h = Tensor::cat(&[x_maxout.forward(&i[0].flatten(1, -1)), y_maxout.forward(&y)], 1)
                            .dropout(drop, train);
                        let h = joint.forward(&h).dropout(drop, train);
                        Ok(vec![h.apply(&out).view([-1]), h])
                    },
                }))
            }
            other => Err(Error::new(format!("`cgan-mlp` has networks `generator` and `discriminator`, not `{other}`"))),
        }
    }

    /// U(0, 1): "uniform in the unit hypercube"; or centred, U(−√3, √3).
    fn sample_latent(&self, n: i64) -> Result<Option<Tensor>> {
        let u = Tensor::rand([n, self.config.z_dim], (Kind::Float, self.env.device()));
        Ok(Some(if self.config.noise == "centred" { (u * 2.0 - 1.0) * 3f64.sqrt() } else { u }))
    }
}
