//! # lab-plugin-mlp
//!
//! Fully connected GANs: `gan-mlp` and `cgan-mlp` ([`goodfellow`]: the original GAN's and the
//! conditional GAN's MNIST networks, maxout and dropout in D), and `mlp` below.
//!
//! `mlp`: a fully connected generator and discriminator, as the 2-D toy studies use them. The
//! defaults are LSGAN's stability experiment (Mao et al. 2017, `stability_comparison/` of the
//! official code): z of 256 from N(0, I), two hidden layers of 128 tanh units in G and in D,
//! orthogonal weights with gain 1.4 and zero biases, a linear output (G's: the data's values,
//! D's: one logit). On images it reads and writes them flat.
use lab_nn::prelude::*;

pub mod goodfellow;

pub use goodfellow::{CganMlp, GanMlp, Maxout};

/// `[model.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Length of z.
    pub z_dim: i64,
    /// Widths of G's hidden layers.
    pub g_hidden: Vec<i64>,
    /// Widths of D's hidden layers.
    pub d_hidden: Vec<i64>,
    /// `tanh`, `relu` or `leaky_relu` (slope 0.2), after every hidden layer.
    pub activation: String,
    /// `none` or `tanh`: G's output (tanh for images in [-1, 1]).
    pub g_output: String,
    /// Gain of the orthogonal initialisation of every weight; 0 for tch's default (Kaiming
    /// uniform weights and biases).
    pub orthogonal_gain: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            z_dim: 256,
            g_hidden: vec![128, 128],
            d_hidden: vec![128, 128],
            activation: "tanh".into(),
            g_output: "none".into(),
            orthogonal_gain: 1.4,
        }
    }
}

/// The config, checked, and the shapes it resolved to.
#[derive(Debug)]
pub struct Mlp {
    config: MlpConfig,
    shapes: Shapes,
}

/// `[in, hidden…]` layers with the activation after each, under `p/fc<i>`.
fn hidden(p: &nn::Path, widths: &[i64], input: i64, c: &MlpConfig) -> (nn::SequentialT, i64) {
    let mut seq = nn::seq_t();
    let mut width = input;
    for (i, &w) in widths.iter().enumerate() {
        seq = seq.add(linear(p, &format!("fc{}", i + 1), width, w, c));
        seq = match c.activation.as_str() {
            "relu" => seq.add_fn(|x| x.relu()),
            "leaky_relu" => seq.add(leaky_relu(0.2)),
            _ => seq.add_fn(|x| x.tanh()),
        };
        width = w;
    }
    (seq, width)
}

fn linear(p: &nn::Path, name: &str, input: i64, output: i64, c: &MlpConfig) -> nn::Linear {
    let config = if c.orthogonal_gain > 0.0 {
        nn::LinearConfig {
            ws_init: nn::Init::Orthogonal { gain: c.orthogonal_gain },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        }
    } else {
        nn::LinearConfig::default()
    };
    nn::linear(p / name, input, output, config)
}

impl GanModel for Mlp {
    const NAME: &'static str = "mlp";
    const DESCRIPTION: &'static str = "Fully connected G and D (defaults: LSGAN's 2-D toy networks, Mao et al. 2017)";
    type Config = MlpConfig;
    type G = nn::SequentialT;
    type D = Critic;

    fn resolve(config: MlpConfig, data: &DataSpec) -> Result<Self> {
        check::positive("z_dim", config.z_dim)?;
        for (key, widths) in [("g_hidden", &config.g_hidden), ("d_hidden", &config.d_hidden)] {
            if widths.is_empty() || widths.iter().any(|&w| w < 1) {
                return Err(lab_plugin_api::Error::config(
                    key,
                    format!("expected a list of positive widths, found {widths:?}"),
                ));
            }
        }
        if !["tanh", "relu", "leaky_relu"].contains(&config.activation.as_str()) {
            return Err(lab_plugin_api::Error::config(
                "activation",
                format!("expected tanh, relu or leaky_relu, found {:?}", config.activation),
            ));
        }
        if !["none", "tanh"].contains(&config.g_output.as_str()) {
            return Err(lab_plugin_api::Error::config(
                "g_output",
                format!("expected none or tanh, found {:?}", config.g_output),
            ));
        }
        check::non_negative("orthogonal_gain", config.orthogonal_gain, "0 keeps tch's default initialisation")?;
        Ok(Self { shapes: Shapes::of(config.z_dim, data), config })
    }

    fn shapes(&self) -> Shapes {
        self.shapes
    }

    fn generator(&self, p: nn::Path) -> nn::SequentialT {
        let c = &self.config;
        let (seq, width) = hidden(&p, &c.g_hidden, c.z_dim, c);
        let seq = seq.add(linear(&p, "out", width, self.shapes.pixels(), c));
        if c.g_output == "tanh" {
            seq.add_fn(|x| x.tanh())
        } else {
            seq
        }
    }

    fn discriminator(&self, p: nn::Path) -> Critic {
        let c = &self.config;
        let (body, width) = hidden(&p, &c.d_hidden, self.shapes.pixels(), c);
        Critic::new(nn::seq_t().add_fn(|x| x.flatten(1, -1)).add(body), linear(&p, "out", width, 1, c))
    }
}

/// The `mlp` architecture plugin.
pub type MlpArchitecture = Gan<Mlp>;

lab_plugin_api::export_plugins! {
    architecture: MlpArchitecture,
    architecture: GanMlp,
    architecture: CganMlp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_testkit::{architecture, rng_lock, FASHION_MNIST};

    const TOY: DataSpec = DataSpec { channels: 2, height: 1, width: 1, num_classes: 0 };

    #[test]
    fn lsgan_toy_networks_have_the_reference_sizes() {
        let arch = architecture::create::<MlpArchitecture>("", TOY).unwrap();
        let report = arch.check_gan_points(8);
        // PyTorch: Linear(256,128), Linear(128,128), Linear(128,2) and Linear(2,128),
        // Linear(128,128), Linear(128,1).
        assert_eq!(report.generator_parameters, (256 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2));
        assert_eq!(report.discriminator_parameters, (2 * 128 + 128) + (128 * 128 + 128) + (128 + 1));
    }

    #[test]
    fn weights_are_orthogonal_with_the_gain_and_biases_zero() {
        let _rng = rng_lock();
        let arch = architecture::create::<MlpArchitecture>("", TOY).unwrap();
        let g = arch.build("generator").unwrap();
        for (name, t, _) in g.tensors().unwrap() {
            if name.ends_with("bias") {
                assert_eq!(t.abs().sum(Kind::Float).double_value(&[]), 0.0, "{name}");
            } else {
                // Rows (or columns, whichever are fewer) are orthogonal with norm 1.4.
                let w = t.to_kind(Kind::Double);
                let gram = if w.size()[0] <= w.size()[1] { w.matmul(&w.tr()) } else { w.tr().matmul(&w) };
                let k = gram.size()[0];
                let eye = Tensor::eye(k, (Kind::Double, tch::Device::Cpu)) * (1.4f64 * 1.4);
                assert!(gram.allclose(&eye, 1e-5, 1e-5, false), "{name}");
            }
        }
    }

    #[test]
    fn the_original_gan_and_cgan_networks_have_the_papers_sizes() {
        let arch = architecture::create::<GanMlp>("", FASHION_MNIST).unwrap();
        let report = arch.check_gan(4);
        // G: Linear(100, 1200), Linear(1200, 1200), Linear(1200, 784); D: maxout 240×5 twice
        // (Linear(784, 1200), Linear(240, 1200)), Linear(240, 1).
        assert_eq!(report.generator_parameters, (100 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 784 + 784));
        assert_eq!(report.discriminator_parameters, (784 * 1200 + 1200) + (240 * 1200 + 1200) + (240 + 1));
        let z = arch.latents(10_000).unwrap();
        let (lo, hi) = (z.min().double_value(&[]), z.max().double_value(&[]));
        assert!(lo >= -(3f64.sqrt()) && hi <= 3f64.sqrt() && hi > 1.7, "U(-√3, √3): [{lo}, {hi}]");

        let arch = architecture::create::<CganMlp>("", FASHION_MNIST).unwrap();
        let report = arch.check_gan(4);
        // G: z → 200, y → 1000, 1200 → 1200, 1200 → 784; D: x → maxout 240×5, y → maxout 50×5,
        // 290 → maxout 240×4, 240 → 1.
        let g = (100 * 200 + 200) + (10 * 1000 + 1000) + (1200 * 1200 + 1200) + (1200 * 784 + 784);
        let d = (784 * 1200 + 1200) + (10 * 250 + 250) + (290 * 960 + 960) + (240 + 1);
        assert_eq!((report.generator_parameters, report.discriminator_parameters), (g, d));
        let err = architecture::create::<CganMlp>("", TOY).err().unwrap();
        assert!(err.to_string().contains("needs labelled data"), "{err}");
        // The paper's noise is U(0, 1); the ablation's is centred, U(−√3, √3).
        let z = arch.latents(4000).unwrap();
        assert!(z.min().double_value(&[]) >= 0.0 && z.max().double_value(&[]) <= 1.0);
        let centred = architecture::create::<CganMlp>("noise = \"centred\"", FASHION_MNIST).unwrap();
        let z = centred.latents(4000).unwrap();
        let (lo, hi) = (z.min().double_value(&[]), z.max().double_value(&[]));
        assert!(lo < -1.7 && lo >= -(3f64.sqrt()) && hi > 1.7 && hi <= 3f64.sqrt(), "[{lo}, {hi}]");
        let err = architecture::create::<CganMlp>("noise = \"gaussian\"", FASHION_MNIST).err().unwrap();
        assert!(err.to_string().starts_with("key `noise`"), "{err}");
        let err = architecture::create::<CganMlp>("generator_dropout = 1.0", FASHION_MNIST).err().unwrap();
        assert_eq!(err.to_string(), "key `generator_dropout`: expected a drop probability in [0, 1), found 1");
    }

    /// Spread over the ten labels of G's output at initialisation, for fixed z (eval mode):
    /// how much the label can move the image before any training.
    fn label_spread(init: &str) -> f64 {
        tch::manual_seed(3);
        let arch = architecture::create::<CganMlp>(&format!("init = \"{init}\""), FASHION_MNIST).unwrap();
        let mut g = arch.build("generator").unwrap();
        let z = arch.latents(1).unwrap().repeat([10, 1]);
        let y = Tensor::arange(10, (Kind::Int64, tch::Device::Cpu));
        let x = g.forward(&[z, y], false).unwrap().remove(0);
        x.std_dim(&[0i64][..], false, false).mean(Kind::Float).double_value(&[])
    }

    #[test]
    fn cgan_starts_with_a_generator_that_sees_its_label() {
        let _rng = rng_lock();
        let (torch, pylearn2) = (label_spread("torch"), label_spread("pylearn2"));
        // Measured: 0.13 under PyTorch's ranges, 0.005 under pylearn2's, the start from which
        // G collapsed to one image.
        assert!(torch > 0.05, "torch init: {torch}");
        assert!(torch > 10.0 * pylearn2, "torch {torch} vs pylearn2 {pylearn2}");
        let err = architecture::create::<CganMlp>("init = \"xavier\"", FASHION_MNIST).err().unwrap();
        assert!(err.to_string().starts_with("key `init`"), "{err}");
    }

    #[test]
    fn maxout_takes_the_largest_piece_and_dropout_acts_in_training_only() {
        let _rng = rng_lock();
        tch::manual_seed(0);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = Maxout::new(&vs.root(), 3, 2, 4, 0.5);
        let x = Tensor::randn([5, 3], (Kind::Float, tch::Device::Cpu));
        let pieces = x.apply(m.linear_for_tests()).view([5, 2, 4]);
        let (by_hand, _) = pieces.max_dim(2, false);
        assert!(m.forward(&x).allclose(&by_hand, 1e-6, 1e-6, false));
        let arch = architecture::create::<GanMlp>("", FASHION_MNIST).unwrap();
        let mut d = arch.build("discriminator").unwrap();
        let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, tch::Device::Cpu));
        let eval =
            |d: &mut lab_plugin_api::host::NetworkHandle| d.forward(&[x.shallow_clone()], false).unwrap().remove(0);
        assert!(eval(&mut d).equal(&eval(&mut d)), "no dropout in eval mode");
        let a = d.forward(&[x.shallow_clone()], true).unwrap().remove(0);
        let b = d.forward(&[x.shallow_clone()], true).unwrap().remove(0);
        assert!(!a.equal(&b), "dropout in training");
    }

    #[test]
    fn images_work_flat_with_a_tanh_output() {
        let arch = architecture::create::<MlpArchitecture>(
            "g_output = \"tanh\"\nactivation = \"leaky_relu\"\nz_dim = 16\ng_hidden = [32]\nd_hidden = [32]",
            FASHION_MNIST,
        )
        .unwrap();
        arch.check_gan(4);
        let err = architecture::create::<MlpArchitecture>("g_hidden = []", TOY).err().unwrap();
        assert_eq!(err.to_string(), "key `g_hidden`: expected a list of positive widths, found []");
    }
}
