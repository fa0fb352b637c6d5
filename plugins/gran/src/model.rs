//! `gran`: the recurrent generator and the discriminator of the official 28×28 and 32×32
//! networks, and the architecture plugin around them (the per-step grid is drawn here).
//!
//! One step t of G, from z_t and the previous step's code h_c (zeros at the first step):
//! h_z = tanh(BN(FC(z_t))); h = ReLU(BN(FC([h_z, h_c]))) as a 7×7 (or 4×4) map; C_t = ReLU
//! deconvolutions, the last linear; h_c = tanh(BN(FC(ReLU(convolutions of C_t)))), the
//! "backward" encoder. The image is sigmoid(Σ_t C_t), rescaled to the core's [-1, 1].
use lab_nn::gan::{self, Shapes, GENERATOR};
use lab_nn::prelude::*;
use lab_plugin_api::{inputs, ArchitecturePlugin, BuildEnv, EvalCtx, Network, Spec, Value, VarStoreNetwork, VisualCtx};

use crate::config::{GranConfig, Settings};

/// The official initialisation of a fully connected weight: Glorot's uniform bound
/// √(6 / (fan_in + fan_out)) (`utils.initialize_weight(..., 'uniform')`); biases start at 0.
fn linear(p: &nn::Path, name: &str, input: i64, output: i64, bias: bool) -> nn::Linear {
    let bound = (6.0 / (input + output) as f64).sqrt();
    let config = nn::LinearConfig {
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        bs_init: Some(nn::Init::Const(0.0)),
        bias,
    };
    nn::linear(p / name, input, output, config)
}

/// The official convolution filters start from N(0, 0.01²) (`init_conv_weights`' default, which
/// every layer uses) with zero biases.
fn filters() -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev: 0.01 }
}

/// A 5×5 stride-2 convolution with padding 2 and no bias (a batch norm follows): halves the side.
fn conv(p: &nn::Path, name: &str, input: i64, output: i64) -> nn::Conv2D {
    let config = nn::ConvConfig { stride: 2, padding: 2, bias: false, ws_init: filters(), ..Default::default() };
    nn::conv2d(p / name, input, output, 5, config)
}

/// A 5×5 stride-2 transposed convolution with a bias that doubles the side exactly (cuDNN's
/// gradient of a padding-2 convolution, as the official `Deconv_layer`: output padding 1).
fn deconv(p: &nn::Path, name: &str, input: i64, output: i64) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig {
        stride: 2,
        padding: 2,
        output_padding: 1,
        bias: true,
        ws_init: filters(),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv_transpose2d(p / name, input, output, 5, config)
}

/// A fully connected layer with a bias and a batch norm (the official `Batch_Norm_layer`, whose
/// bias is redundant before the norm but is a parameter all the same).
#[derive(Debug)]
struct BnLinear {
    fc: nn::Linear,
    bn: nn::BatchNorm,
}

impl BnLinear {
    fn new(p: &nn::Path, name: &str, input: i64, output: i64) -> Self {
        Self {
            fc: linear(p, &format!("{name}_fc"), input, output, true),
            bn: nn::batch_norm1d(p / format!("{name}_bn"), output, reference_batch_norm(1e-5)),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.fc).apply_t(&self.bn, train)
    }
}

/// A convolution without bias and its batch norm (the official `BN_Conv_layer`).
#[derive(Debug)]
struct BnConv {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl BnConv {
    fn new(p: &nn::Path, name: &str, input: i64, output: i64) -> Self {
        Self {
            conv: conv(p, &format!("{name}_conv"), input, output),
            bn: nn::batch_norm2d(p / format!("{name}_bn"), output, reference_batch_norm(1e-5)),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// The last layer of G's encoder: batch-normed at 28×28 (`recGenI28`'s `L5` is a
/// `BN_Conv_layer`), a plain convolution with a bias at 32×32 (`recGenI32`'s `L5` is a
/// `Conv_layer`).
#[derive(Debug)]
enum EncoderTop {
    Normed(BnConv),
    Plain(nn::Conv2D),
}

/// GRAN's recurrent generator. All steps share its weights (and its batch norms' statistics).
#[derive(Debug)]
pub struct Generator {
    settings: Settings,
    /// z_t → h_z (`L0a`).
    noise: BnLinear,
    /// [h_z, h_c] → the first map (`L1`).
    hidden: BnLinear,
    /// The map → the canvas, halving the channels and doubling the side each time (`L2`...);
    /// the last is linear and gives the image's channels.
    deconvs: Vec<nn::ConvTranspose2D>,
    /// The canvas → the first map's shape, the deconvolutions in mirror (`L7`/`L6`..., `L5`
    /// last), then → h_c (`L0b`).
    encoder: Vec<BnConv>,
    encoder_top: EncoderTop,
    code: BnLinear,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let (g, b, c, z, levels) = (s.g_channels, s.base(), s.image_channels, s.z_dim, s.levels());
        // Channels after the k-th deconvolution (k = 0: the first map), the image's at the end.
        let width = |k: i64| if k == levels { c } else { g >> k };
        let deconvs =
            (1..=levels).map(|k| deconv(&p, &format!("deconv{k}"), width(k - 1), width(k))).collect::<Vec<_>>();
        let encoder = (1..levels)
            .map(|k| BnConv::new(&p, &format!("encode{k}"), width(levels - k + 1), width(levels - k)))
            .collect::<Vec<_>>();
        let top = format!("encode{levels}");
        let encoder_top = if levels == 3 {
            let config = nn::ConvConfig { stride: 2, padding: 2, bias: true, ws_init: filters(), ..Default::default() };
            EncoderTop::Plain(nn::conv2d(&p / format!("{top}_conv"), width(1), g, 5, config))
        } else {
            EncoderTop::Normed(BnConv::new(&p, &top, width(1), g))
        };
        Self {
            settings: s.clone(),
            noise: BnLinear::new(&p, "noise", z, z),
            hidden: BnLinear::new(&p, "hidden", 2 * z, g * b * b),
            deconvs,
            encoder,
            encoder_top,
            code: BnLinear::new(&p, "code", g * b * b, z),
        }
    }

    /// h_c for the next step, from a canvas.
    fn encode(&self, canvas: &Tensor, train: bool) -> Tensor {
        let e = self.encoder.iter().fold(canvas.shallow_clone(), |x, layer| layer.forward(&x, train).relu());
        let e = match &self.encoder_top {
            EncoderTop::Normed(layer) => layer.forward(&e, train),
            EncoderTop::Plain(conv) => e.apply(conv),
        };
        self.code.forward(&e.relu().flatten(1, -1), train).tanh()
    }

    /// The canvases C_1..C_T (pre-sigmoid, `[N, C, H, W]` each) for latents `[N, T·z_dim]`,
    /// z_t being columns t·z_dim .. (t+1)·z_dim.
    pub fn canvases(&self, z: &Tensor, train: bool) -> Vec<Tensor> {
        let s = &self.settings;
        let (n, b) = (z.size()[0], s.base());
        let zs = z.view([n, s.time_steps, s.z_dim]);
        let mut code = Tensor::zeros([n, s.z_dim], (z.kind(), z.device()));
        let mut canvases = Vec::with_capacity(s.time_steps as usize);
        let last = self.deconvs.len() - 1;
        for t in 0..s.time_steps {
            let h_z = self.noise.forward(&zs.select(1, t), train).tanh();
            let h = self.hidden.forward(&Tensor::cat(&[&h_z, &code], 1), train).relu();
            let mut canvas = h.view([n, s.g_channels, b, b]);
            for (k, layer) in self.deconvs.iter().enumerate() {
                canvas = canvas.apply(layer);
                if k < last {
                    canvas = canvas.relu();
                }
            }
            // Nothing reads the last step's code, so it is not computed (nor are the encoder's
            // batch-norm statistics updated for it).
            if t + 1 < s.time_steps {
                code = self.encode(&canvas, train);
            }
            canvases.push(canvas);
        }
        canvases
    }

    /// The image, the per-step images sigmoid(Σ_{t≤τ} C_t) for τ = 1..T as `[N, T, C, H, W]`
    /// (the official `sequential_drawing`), both in [-1, 1] (the image is the last step's), and
    /// the canvases themselves, `[N, T, C, H, W]`.
    pub fn draw(&self, z: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
        let canvases = Tensor::stack(&self.canvases(z, train), 1);
        let steps = canvases.cumsum(1, None::<Kind>).sigmoid() * 2.0 - 1.0;
        let image = steps.select(1, self.settings.time_steps - 1);
        (image, steps, canvases)
    }
}

impl lab_nn::gan::Generator for Generator {
    fn generate(&self, z: &Tensor, _labels: Option<&Tensor>, train: bool) -> Tensor {
        self.draw(z, train).0
    }
}

/// The official discriminator (`convnet28`, `convnet32`): batch-normed 5×5 stride-2
/// convolutions with ReLU (two at 28×28, three at 32×32, halving the channels after the first),
/// a tanh hidden layer with a bias, and a logit without one (the official sigmoid is in the
/// loss).
#[derive(Debug)]
pub struct Discriminator {
    convs: Vec<BnConv>,
    hidden: nn::Linear,
    out: nn::Linear,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let (d, b, levels) = (s.d_channels, s.base(), s.levels());
        let width = |k: i64| if k == 0 { s.image_channels } else { d >> (k - 1) };
        let convs = (1..=levels).map(|k| BnConv::new(&p, &format!("conv{k}"), width(k - 1), width(k))).collect();
        Self {
            convs,
            hidden: linear(&p, "hidden", width(levels) * b * b, s.d_hidden, true),
            out: linear(&p, "out", s.d_hidden, 1, false),
        }
    }
}

impl lab_nn::gan::Discriminator for Discriminator {
    /// `(logits [N], the tanh hidden layer [N, d_hidden])`.
    fn discriminate(&self, x: &Tensor, _labels: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let h = self.convs.iter().fold(x.shallow_clone(), |h, layer| layer.forward(&h, train).relu());
        let features = h.flatten(1, -1).apply(&self.hidden).tanh();
        (features.apply(&self.out).view([-1]), features)
    }
}

/// The `gran` architecture plugin.
#[derive(Debug)]
pub struct Gran {
    settings: Settings,
    device: tch::Device,
}

impl Gran {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn shapes(&self) -> Shapes {
        let s = &self.settings;
        Shapes::square(s.latent_width(), s.image_channels, s.resolution, None)
    }
}

impl ArchitecturePlugin for Gran {
    const NAME: &'static str = "gran";
    const DESCRIPTION: &'static str = "GRAN (Im et al., 2016), 28x28 and 32x32: a recurrent generator summing T \
         canvases under one sigmoid, a fresh z per step; the official convnet discriminator";
    type Config = GranConfig;

    fn create(config: GranConfig, env: BuildEnv) -> Result<Self> {
        Ok(Self { settings: config.resolve(&env.data)?, device: env.device() })
    }

    /// T·z_dim: the steps' z_t side by side.
    fn z_dim(&self) -> i64 {
        self.settings.latent_width()
    }

    fn networks(&self) -> Vec<Spec> {
        gan::networks()
    }

    /// The generator returns `[images, per-step images, canvases]` (the last two `[N, T, C, H,
    /// W]`); the core reads the first, the grid the second, the evaluation the third.
    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let s = &self.settings;
        if name != GENERATOR {
            let (g, d) = (|p: nn::Path| Generator::new(p, s), |p: nn::Path| Discriminator::new(p, s));
            return gan::build(Self::NAME, name, self.device, self.shapes(), g, d);
        }
        let vs = nn::VarStore::new(self.device);
        let g = Generator::new(vs.root(), s);
        let width = s.latent_width();
        let forward = move |inputs: &[Tensor], train: bool| {
            let inputs = inputs::split(Self::NAME, GENERATOR, inputs, false)?;
            let z = inputs::latent(Self::NAME, inputs.main, width)?;
            let (image, steps, canvases) = g.draw(&z, train);
            Ok(vec![image, steps, canvases])
        };
        Ok(Box::new(VarStoreNetwork { vs, forward }))
    }

    /// The per-step images of the fixed latents: one row per sample, sigmoid(Σ_{t≤τ} C_t) for
    /// τ = 1..T across, as many rows as make about `log.samples` images.
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        let t = self.settings.time_steps;
        let z = ctx.fixed_latent()?;
        let rows = ((ctx.samples()? + t - 1) / t).clamp(1, z.size()[0]);
        let steps = ctx.run_network(GENERATOR, &[z.narrow(0, 0, rows)])?.remove(1);
        let [_, _, c, h, w] = steps.size()[..] else {
            return Err(lab_plugin_api::Error::new("gran: the generator's second output is not [N, T, C, H, W]"));
        };
        Ok(Some((steps.reshape([rows * t, c, h, w]), t)))
    }

    fn measures(&self) -> Vec<String> {
        vec!["canvas_share_max".to_string()]
    }

    /// `canvas_share_max`: on `eval_count` fresh samples, each step's share of the canvases'
    /// magnitude, E|C_t| / Σ_s E|C_s| (mean over images and pixels), and the largest share:
    /// 1/T when the steps contribute alike, 1 when one step decides the image (ZOO.md's check
    /// that Σ_t C_t is not dominated by one step).
    fn evaluate(&self, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
        let s = &self.settings;
        let mut magnitude = Tensor::zeros([s.time_steps], (Kind::Double, self.device));
        let mut left = s.eval_count;
        while left > 0 {
            let n = left.min(100);
            let z = Tensor::randn([n, s.latent_width()], (Kind::Float, self.device));
            let canvases = ctx.run_network(GENERATOR, &[z])?.remove(2);
            let per_step = canvases.abs().to_kind(Kind::Double).mean_dim([0i64, 2, 3, 4].as_slice(), false, None);
            magnitude += per_step * n as f64;
            left -= n;
        }
        let share = &magnitude / magnitude.sum(Kind::Double);
        Ok(vec![Value::lower("canvas_share_max", share.max().double_value(&[]))])
    }
}
