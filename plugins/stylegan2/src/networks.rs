//! StyleGAN2's generator (mapping network + `skip` synthesis network) and discriminator (`orig`
//! or `resnet` blocks, minibatch-stddev epilogue, projection on a mapped label), with the
//! official module names (`mapping.fc0`, `synthesis.b8.conv0.affine`, `b32.fromrgb`, ...) so that
//! checkpoints read like stylegan2-ada-pytorch's `state_dict`.
use lab_plugin_api::tch::{self, nn, Kind, Tensor};

use crate::config::{DArchitecture, NoiseMode, Settings};
use crate::layers::{
    bias_act, minibatch_std, modulated_conv2d, normalize_2nd_moment, upsample2d, Activation, Conv2dLayer,
    FullyConnected,
};

/// √½: the two branches of a residual block are each scaled by it, keeping the sum's variance.
const RESIDUAL_GAIN: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// `MappingNetwork`: normalised z (and a normalised label embedding) through `layers` fully
/// connected leaky-ReLU layers at the mapping lr multiplier; G's also tracks the mean w.
#[derive(Debug)]
pub struct Mapping {
    embed: Option<FullyConnected>,
    classes: i64,
    layers: Vec<FullyConnected>,
    /// G's running mean of w (`w_avg`, decay `w_avg_beta`); D's mapping has none.
    w_avg: Option<(Tensor, f64)>,
}

impl Mapping {
    /// `z_dim = 0` maps the label alone (D's `cmap`).
    fn new(p: &nn::Path, s: &Settings, z_dim: i64, layers: i64, track_mean: bool) -> Self {
        let classes = s.classes.unwrap_or(0);
        let embed_features = if classes > 0 { s.w_dim } else { 0 };
        let embed = (classes > 0)
            .then(|| FullyConnected::new(&(p / "embed"), classes, embed_features, Activation::Linear, 1.0, 0.0));
        let layers = (0..layers)
            .map(|i| {
                let in_features = if i == 0 { z_dim + embed_features } else { s.w_dim };
                let p = p / format!("fc{i}");
                FullyConnected::new(&p, in_features, s.w_dim, Activation::LeakyRelu, s.mapping_lr_multiplier, 0.0)
            })
            .collect();
        let w_avg = track_mean.then(|| (p.zeros_no_train("w_avg", &[s.w_dim]), s.w_avg_beta));
        Self { embed, classes, layers, w_avg }
    }

    /// w `[N, w_dim]`; in training, G's mapping moves `w_avg` towards the batch's mean unless
    /// `update_mean` is off (the second latent of style mixing).
    fn forward(&self, z: Option<&Tensor>, labels: Option<&Tensor>, kind: Kind, update_mean: bool) -> Tensor {
        let z = z.map(|z| normalize_2nd_moment(&z.to_kind(kind)));
        let y = match (&self.embed, labels) {
            (Some(embed), Some(labels)) => {
                Some(normalize_2nd_moment(&embed.forward(&labels.one_hot(self.classes).to_kind(kind))))
            }
            _ => None,
        };
        let mut x = match (z, y) {
            (Some(z), Some(y)) => Tensor::cat(&[z, y], 1),
            (Some(z), None) => z,
            (None, Some(y)) => y,
            (None, None) => unreachable!("a mapping network reads z, a label or both"),
        };
        for layer in &self.layers {
            x = layer.forward(&x);
        }
        if let (Some((w_avg, beta)), true) = (&self.w_avg, update_mean) {
            tch::no_grad(|| {
                let mean = x.detach().mean_dim([0i64].as_slice(), false, kind);
                w_avg.shallow_clone().copy_(&mean.lerp(w_avg, *beta));
            });
        }
        x
    }
}

/// `SynthesisLayer`: a modulated 3×3 convolution (doubling the resolution with `up`), noise,
/// bias and leaky ReLU.
#[derive(Debug)]
struct SynthesisLayer {
    affine: FullyConnected,
    weight: Tensor,
    noise_const: Tensor,
    noise_strength: Tensor,
    bias: Tensor,
    resolution: i64,
    up: bool,
    clamp: Option<f64>,
}

impl SynthesisLayer {
    fn new(p: &nn::Path, s: &Settings, in_channels: i64, out_channels: i64, resolution: i64, up: bool) -> Self {
        let affine = FullyConnected::new(&(p / "affine"), s.w_dim, in_channels, Activation::Linear, 1.0, 1.0);
        let weight = p.randn("weight", &[out_channels, in_channels, 3, 3], 0.0, 1.0);
        // A buffer: `noise_mode = "const"` adds this fixed image (× the learned strength).
        let noise_const = p.zeros_no_train("noise_const", &[resolution, resolution]);
        tch::no_grad(|| noise_const.shallow_clone().copy_(&noise_const.randn_like()));
        let noise_strength = p.zeros("noise_strength", &[]);
        let bias = p.zeros("bias", &[out_channels]);
        Self { affine, weight, noise_const, noise_strength, bias, resolution, up, clamp: s.conv_clamp }
    }

    fn forward(&self, x: &Tensor, w: &Tensor, noise_mode: NoiseMode) -> Tensor {
        let styles = self.affine.forward(w);
        let noise = match noise_mode {
            NoiseMode::Random => {
                let n = x.size()[0];
                Some(
                    Tensor::randn([n, 1, self.resolution, self.resolution], (x.kind(), x.device()))
                        * &self.noise_strength,
                )
            }
            NoiseMode::Const => Some(&self.noise_const * &self.noise_strength),
            NoiseMode::None => None,
        };
        let x = modulated_conv2d(x, &self.weight, &styles, noise.as_ref(), self.up, true);
        bias_act(&x, Some(&self.bias), Activation::LeakyRelu, std::f64::consts::SQRT_2, self.clamp)
    }
}

/// `ToRGBLayer`: a modulated 1×1 convolution to the image's channels, without demodulation.
#[derive(Debug)]
struct ToRgb {
    affine: FullyConnected,
    weight: Tensor,
    bias: Tensor,
    weight_gain: f64,
    clamp: Option<f64>,
}

impl ToRgb {
    fn new(p: &nn::Path, s: &Settings, in_channels: i64) -> Self {
        let affine = FullyConnected::new(&(p / "affine"), s.w_dim, in_channels, Activation::Linear, 1.0, 1.0);
        let weight = p.randn("weight", &[s.image_channels, in_channels, 1, 1], 0.0, 1.0);
        let bias = p.zeros("bias", &[s.image_channels]);
        Self { affine, weight, bias, weight_gain: 1.0 / (in_channels as f64).sqrt(), clamp: s.conv_clamp }
    }

    fn forward(&self, x: &Tensor, w: &Tensor) -> Tensor {
        let styles = self.affine.forward(w) * self.weight_gain;
        let x = modulated_conv2d(x, &self.weight, &styles, None, false, false);
        bias_act(&x, Some(&self.bias), Activation::Linear, 1.0, self.clamp)
    }
}

/// `SynthesisBlock` of the `skip` architecture: the 4×4 block starts from a learned constant and
/// has one convolution; the others double the resolution with their first. Every block adds its
/// toRGB output to the upsampled image so far.
#[derive(Debug)]
struct SynthesisBlock {
    constant: Option<Tensor>,
    conv0: Option<SynthesisLayer>,
    conv1: SynthesisLayer,
    torgb: ToRgb,
}

impl SynthesisBlock {
    fn new(p: &nn::Path, s: &Settings, resolution: i64) -> Self {
        let out_channels = s.channels(resolution);
        let first = resolution == 4;
        let constant = first.then(|| p.randn("const", &[out_channels, 4, 4], 0.0, 1.0));
        let conv0 = (!first).then(|| {
            SynthesisLayer::new(&(p / "conv0"), s, s.channels(resolution / 2), out_channels, resolution, true)
        });
        let conv1 = SynthesisLayer::new(&(p / "conv1"), s, out_channels, out_channels, resolution, false);
        let torgb = ToRgb::new(&(p / "torgb"), s, out_channels);
        Self { constant, conv0, conv1, torgb }
    }

    /// The number of w vectors the block's convolutions read (its toRGB reads the next one).
    fn num_conv(&self) -> i64 {
        if self.conv0.is_some() {
            2
        } else {
            1
        }
    }

    /// `ws` `[N, num_conv + 1, w_dim]`.
    fn forward(&self, x: Option<Tensor>, img: Option<Tensor>, ws: &Tensor, noise: NoiseMode) -> (Tensor, Tensor) {
        let w = |i: i64| ws.select(1, i);
        let x = match (&self.constant, &self.conv0, x) {
            (Some(c), _, _) => {
                let n = ws.size()[0];
                let x = c.unsqueeze(0).repeat([n, 1, 1, 1]);
                self.conv1.forward(&x, &w(0), noise)
            }
            (None, Some(conv0), Some(x)) => self.conv1.forward(&conv0.forward(&x, &w(0), noise), &w(1), noise),
            _ => unreachable!("every block after the first receives features"),
        };
        let y = self.torgb.forward(&x, &w(self.num_conv()));
        let img = match img {
            Some(img) => upsample2d(&img) + y,
            None => y,
        };
        (x, img)
    }
}

/// The generator: z (and a label) → w → image. Its network outputs are `[image, ws]`, the
/// broadcast w `[N, num_ws, w_dim]` being what path-length regularisation differentiates by.
#[derive(Debug)]
pub struct Generator {
    mapping: Mapping,
    blocks: Vec<SynthesisBlock>,
    num_ws: i64,
    style_mixing_prob: f64,
    truncation_psi: f64,
    noise_mode: NoiseMode,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        // The official constructor builds the synthesis network first.
        let synthesis = &p / "synthesis";
        let blocks =
            s.resolutions().into_iter().map(|r| SynthesisBlock::new(&(&synthesis / format!("b{r}")), s, r)).collect();
        let mapping = Mapping::new(&(&p / "mapping"), s, s.z_dim, s.mapping_layers, true);
        Self {
            mapping,
            blocks,
            num_ws: s.num_ws(),
            style_mixing_prob: s.style_mixing_prob,
            truncation_psi: s.truncation_psi,
            noise_mode: s.noise_mode,
        }
    }

    /// The broadcast latents: in training with style mixing, a random share of the images take
    /// the layers from a random cutoff on from a second latent (drawn here, as the official
    /// loss draws it); outside training, truncation towards `w_avg`.
    pub fn ws(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        let kind = self.kind();
        let broadcast = |w: Tensor| w.unsqueeze(1).repeat([1, self.num_ws, 1]);
        let mut ws = broadcast(self.mapping.forward(Some(z), labels, kind, train));
        if train && self.style_mixing_prob > 0.0 {
            let device = z.device();
            // Read on the device: a host-side `if` would sync every step.
            let cutoff = Tensor::randint_low(1, self.num_ws, [1], (Kind::Int64, device));
            let mixing = Tensor::rand([1], (Kind::Float, device)).lt(self.style_mixing_prob);
            let cutoff = cutoff.where_self(&mixing, &Tensor::full([1], self.num_ws, (Kind::Int64, device)));
            let other = broadcast(self.mapping.forward(Some(&z.randn_like()), labels, kind, false));
            let later = Tensor::arange(self.num_ws, (Kind::Int64, device)).ge_tensor(&cutoff).view([1, -1, 1]);
            ws = other.where_self(&later, &ws);
        }
        if !train && self.truncation_psi != 1.0 {
            if let Some((w_avg, _)) = &self.mapping.w_avg {
                ws = w_avg.lerp(&ws, self.truncation_psi);
            }
        }
        ws
    }

    /// The running mean of w (`mapping.w_avg`), shared with the network.
    pub fn mapping_mean(&self) -> Option<Tensor> {
        self.mapping.w_avg.as_ref().map(|(t, _)| t.shallow_clone())
    }

    /// The image for given broadcast latents.
    pub fn synthesis(&self, ws: &Tensor) -> Tensor {
        let (mut x, mut img) = (None, None);
        let mut index = 0;
        for block in &self.blocks {
            let block_ws = ws.narrow(1, index, block.num_conv() + 1);
            let (next_x, next_img) = block.forward(x, img, &block_ws, self.noise_mode);
            (x, img) = (Some(next_x), Some(next_img));
            index += block.num_conv();
        }
        img.expect("at least the 4x4 block")
    }

    /// The kind the weights have (float32, or float64 in the cross-check).
    fn kind(&self) -> Kind {
        self.blocks[0].conv1.weight.kind()
    }
}

impl lab_nn::gan::Generator for Generator {
    fn generate(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        self.synthesis(&self.ws(z, labels, train))
    }

    fn generate_outputs(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Vec<Tensor> {
        let ws = self.ws(z, labels, train);
        vec![self.synthesis(&ws), ws]
    }
}

/// `DiscriminatorBlock`: (fromRGB on the first,) two 3×3 convolutions, the second halving the
/// resolution; `resnet` adds a 1×1 downsampling skip and scales both branches by √½.
#[derive(Debug)]
struct DiscriminatorBlock {
    fromrgb: Option<Conv2dLayer>,
    conv0: Conv2dLayer,
    conv1: Conv2dLayer,
    skip: Option<Conv2dLayer>,
}

impl DiscriminatorBlock {
    fn new(p: &nn::Path, s: &Settings, resolution: i64) -> Self {
        let (tmp, out) = (s.channels(resolution), s.channels(resolution / 2));
        let lrelu = (true, Activation::LeakyRelu);
        let clamp = s.conv_clamp;
        let fromrgb = (resolution == s.resolution)
            .then(|| Conv2dLayer::new(&(p / "fromrgb"), s.image_channels, tmp, 1, lrelu, false, clamp));
        let conv0 = Conv2dLayer::new(&(p / "conv0"), tmp, tmp, 3, lrelu, false, clamp);
        let conv1 = Conv2dLayer::new(&(p / "conv1"), tmp, out, 3, lrelu, true, clamp);
        let skip = (s.d_architecture == DArchitecture::Resnet)
            .then(|| Conv2dLayer::new(&(p / "skip"), tmp, out, 1, (false, Activation::Linear), true, None));
        Self { fromrgb, conv0, conv1, skip }
    }

    fn forward(&self, x: Option<Tensor>, img: &Tensor) -> Tensor {
        let x = match (&self.fromrgb, x) {
            (Some(fromrgb), _) => fromrgb.forward(img, 1.0),
            (None, Some(x)) => x,
            (None, None) => unreachable!("blocks after the first receive features"),
        };
        match &self.skip {
            Some(skip) => {
                let y = skip.forward(&x, RESIDUAL_GAIN);
                y + self.conv1.forward(&self.conv0.forward(&x, 1.0), RESIDUAL_GAIN)
            }
            None => self.conv1.forward(&self.conv0.forward(&x, 1.0), 1.0),
        }
    }
}

/// The discriminator: blocks from the image's resolution down to 8×8, then the 4×4 epilogue
/// (`b4`: minibatch stddev, a 3×3 convolution, two fully connected layers); a conditional D
/// projects the output on its mapped label: ⟨out, cmap⟩/√cmap_dim.
#[derive(Debug)]
pub struct Discriminator {
    blocks: Vec<DiscriminatorBlock>,
    mapping: Option<Mapping>,
    mbstd: Option<(i64, i64)>,
    conv: Conv2dLayer,
    fc: FullyConnected,
    out: FullyConnected,
    cmap_dim: i64,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let resolutions: Vec<i64> = s.resolutions().into_iter().rev().filter(|r| *r > 4).collect();
        let blocks = resolutions.iter().map(|r| DiscriminatorBlock::new(&(&p / format!("b{r}")), s, *r)).collect();
        let conditional = s.classes.is_some();
        let cmap_dim = if conditional { s.channels(4) } else { 0 };
        // The label's mapping: stylegan2-ada's D keeps `MappingNetwork`'s default depth and maps
        // to the 4×4 width, with no z and no running mean.
        let mapping = conditional.then(|| {
            let label_settings = Settings { w_dim: cmap_dim, ..s.clone() };
            Mapping::new(&(&p / "mapping"), &label_settings, 0, s.d_mapping_layers, false)
        });
        let epilogue = &p / "b4";
        let channels = s.channels(4);
        let lrelu = (true, Activation::LeakyRelu);
        let conv = Conv2dLayer::new(
            &(&epilogue / "conv"),
            channels + s.mbstd_channels,
            channels,
            3,
            lrelu,
            false,
            s.conv_clamp,
        );
        let fc = FullyConnected::new(&(&epilogue / "fc"), channels * 16, channels, Activation::LeakyRelu, 1.0, 0.0);
        let out = FullyConnected::new(&(&epilogue / "out"), channels, cmap_dim.max(1), Activation::Linear, 1.0, 0.0);
        let mbstd = (s.mbstd_channels > 0).then_some((s.mbstd_group_size, s.mbstd_channels));
        Self { blocks, mapping, mbstd, conv, fc, out, cmap_dim }
    }

    /// `(logits [N], features [N, C])`, the features being the epilogue's `fc` output.
    pub fn forward(&self, img: &Tensor, labels: Option<&Tensor>) -> (Tensor, Tensor) {
        let mut x = None;
        for block in &self.blocks {
            x = Some(block.forward(x, img));
        }
        let mut x = x.expect("images of 8x8 or more: at least one block");
        if let Some((group, channels)) = self.mbstd {
            x = minibatch_std(&x, group, channels);
        }
        let features = self.fc.forward(&self.conv.forward(&x, 1.0).flatten(1, -1));
        let out = self.out.forward(&features);
        let logits = match (&self.mapping, labels) {
            (Some(mapping), Some(labels)) => {
                let cmap = mapping.forward(None, Some(labels), img.kind(), false);
                (out * cmap).sum_dim_intlist([1i64].as_slice(), false, img.kind()) / (self.cmap_dim as f64).sqrt()
            }
            _ => out.view([-1]),
        };
        (logits, features)
    }
}

impl lab_nn::gan::Discriminator for Discriminator {
    fn discriminate(&self, x: &Tensor, labels: Option<&Tensor>, _train: bool) -> (Tensor, Tensor) {
        self.forward(x, labels)
    }
}
