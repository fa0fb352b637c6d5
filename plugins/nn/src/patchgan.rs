//! The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017, §3.2.2): a stack of
//! 4×4 convolutions whose output is a map of logits, one per overlapping input patch, rather
//! than one logit per image. With three stride-2 layers each logit sees a 70×70 patch.
//!
//! Layout (the official `NLayerDiscriminator`, with `n_layers` = 3 and `ndf` = 64):
//! C64 (no norm) → C128 → C256, each 4×4 stride 2, then C512 4×4 stride 1, then a 4×4 stride-1
//! convolution to one channel; padding 1 everywhere, LeakyReLU 0.2 after every layer but the
//! last. Widths double per layer up to 8·`ndf`. Convolutions followed by a norm carry a bias
//! only with instance norm; the first and the last always do.
//!
//! Variables: `conv{i}.weight` (and `.bias`) for layer i = 0 ..= n_layers + 1, and
//! `norm{i}.gain`, `.bias`, `.stored_mean`, `.stored_var` for the batch-normed ones.
use lab_plugin_api::tch::{nn, Tensor};

use crate::layers::{leaky_relu, Conv2d, Weight};
use crate::norm::{Norm, NormLayer};

/// The kernel side of every layer.
const KERNEL: i64 = 4;
/// The padding of every layer.
const PADDING: i64 = 1;
/// The negative slope of the LeakyReLUs.
const SLOPE: f64 = 0.2;
/// Widths grow as `ndf · 2^i` up to this multiple of `ndf`.
const MAX_WIDTH_MULTIPLE: i64 = 8;

/// What a PatchGAN is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGanConfig {
    /// Channels of the images it reads (pix2pix: those of A and B together).
    pub in_channels: i64,
    /// Width of the first layer (`ndf`, 64 in the paper).
    pub ndf: i64,
    /// Stride-2 layers (3: the 70×70 PatchGAN; 1: 16×16; 2: 34×34).
    pub n_layers: i64,
    pub norm: Norm,
}

impl Default for PatchGanConfig {
    /// The 70×70 PatchGAN of pix2pix on RGB pairs.
    fn default() -> Self {
        Self { in_channels: 6, ndf: 64, n_layers: 3, norm: Norm::Batch }
    }
}

impl PatchGanConfig {
    /// The channels each convolution produces, first to last (the last is the logit map).
    pub fn widths(&self) -> Vec<i64> {
        let mut widths: Vec<i64> =
            (0..=self.n_layers).map(|i| self.ndf * (1i64 << i.min(62)).min(MAX_WIDTH_MULTIPLE)).collect();
        widths.push(1);
        widths
    }

    /// The side of the patch each output logit sees: [`receptive_field`] of `n_layers`.
    pub fn receptive_field(&self) -> i64 {
        receptive_field(self.n_layers)
    }
}

/// One convolution, its optional norm, and whether a LeakyReLU follows.
#[derive(Debug)]
struct Layer {
    conv: Conv2d,
    norm: Option<NormLayer>,
    activate: bool,
}

/// A PatchGAN: images `[N, C, H, W]` → logits `[N, 1, H', W']`.
#[derive(Debug)]
pub struct PatchGan {
    layers: Vec<Layer>,
}

impl PatchGan {
    /// A fresh PatchGAN under `p`, initialised as the official `init_weights('normal')`:
    /// convolution weights from N(0, 0.02), biases 0, batch norm gains from N(1, 0.02) and
    /// biases 0. Variables are drawn layer by layer, weight before norm.
    pub fn new(p: &nn::Path, config: &PatchGanConfig) -> Self {
        let widths = config.widths();
        let last = widths.len() - 1;
        let mut input = config.in_channels;
        let mut layers = Vec::with_capacity(widths.len());
        for (i, &output) in widths.iter().enumerate() {
            // The first layer has no norm; the last is the logit map.
            let normed = i > 0 && i < last;
            let stride = if i < config.n_layers as usize { 2 } else { 1 };
            let conv_path = p / format!("conv{i}");
            let weight =
                conv_path.var("weight", &[output, input, KERNEL, KERNEL], nn::Init::Randn { mean: 0.0, stdev: 0.02 });
            let bias = (!normed || config.norm.conv_bias()).then(|| conv_path.zeros("bias", &[output]));
            let conv = Conv2d::new(Weight::Plain(weight), bias, stride, PADDING);
            let norm = normed.then(|| {
                config.norm.layer(&(p / format!("norm{i}")), output, nn::Init::Randn { mean: 1.0, stdev: 0.02 })
            });
            layers.push(Layer { conv, norm, activate: i < last });
            input = output;
        }
        Self { layers }
    }

    /// The logit map of `x`. Batch norm uses batch statistics in training and the running ones
    /// otherwise.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        for layer in &self.layers {
            h = layer.conv.forward(&h, train);
            if let Some(norm) = &layer.norm {
                h = norm.forward(&h, train);
            }
            if layer.activate {
                h = h.apply(&leaky_relu(SLOPE));
            }
        }
        h
    }
}

/// The side of the input patch one output logit of a PatchGAN with `n_layers` stride-2 layers
/// sees. Walking from one output pixel back to the input, a layer with kernel k and stride s
/// turns a field of r pixels into (r − 1)·s + k: the two stride-1 layers nearest the output,
/// then the `n_layers` stride-2 ones.
pub fn receptive_field(n_layers: i64) -> i64 {
    let strides_from_output = [1, 1].into_iter().chain(std::iter::repeat_n(2, n_layers.max(0) as usize));
    strides_from_output.fold(1, |field, stride| (field - 1) * stride + KERNEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::{self, Device, Kind};
    use lab_plugin_testkit::rng_lock;

    fn count(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables().iter().map(Tensor::numel).sum::<usize>() as i64
    }

    #[test]
    fn receptive_fields_are_70_34_and_16() {
        assert_eq!(receptive_field(3), 70);
        assert_eq!(receptive_field(2), 34);
        assert_eq!(receptive_field(1), 16);
        assert_eq!(PatchGanConfig::default().receptive_field(), 70);
    }

    #[test]
    fn receptive_field_is_what_the_gradient_of_one_logit_reaches() {
        // Every weight positive and no norm in play (one instance-normed channel would couple
        // all pixels), so the input pixels one logit depends on are exactly its field.
        for n_layers in 1..=3 {
            let mut vs = nn::VarStore::new(Device::Cpu);
            let config = PatchGanConfig { in_channels: 1, ndf: 1, n_layers, norm: Norm::Batch };
            let d = PatchGan::new(&vs.root(), &config);
            vs.double();
            tch::no_grad(|| {
                for (_, mut t) in vs.variables() {
                    let _ = t.fill_(1.0);
                }
            });
            let side = 2 * receptive_field(n_layers) + 32;
            let x = Tensor::ones([1, 1, side, side], (Kind::Double, Device::Cpu)).set_requires_grad(true);
            let logits = d.forward(&x, false);
            let (h, w) = (logits.size()[2], logits.size()[3]);
            logits.narrow(2, h / 2, 1).narrow(3, w / 2, 1).sum(Kind::Double).backward();
            let reached = x.grad().ne(0.0).squeeze();
            let rows = reached.any_dim(1, false).sum(Kind::Int64).int64_value(&[]);
            let cols = reached.any_dim(0, false).sum(Kind::Int64).int64_value(&[]);
            assert_eq!((rows, cols), (receptive_field(n_layers), receptive_field(n_layers)), "n_layers {n_layers}");
        }
    }

    #[test]
    fn the_70x70_patchgan_has_the_official_layers_and_parameter_count() {
        let _rng = rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let config = PatchGanConfig::default();
        assert_eq!(config.widths(), [64, 128, 256, 512, 1]);
        let d = PatchGan::new(&vs.root(), &config);
        // Convolutions 6·64·16 + 64, 64·128·16, 128·256·16, 256·512·16, 512·16 + 1, and batch
        // norm's gain and bias over 128, 256 and 512 channels.
        assert_eq!(count(&vs), 2_768_705);
        let mut names: Vec<_> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "conv0.bias",
                "conv0.weight",
                "conv1.weight",
                "conv2.weight",
                "conv3.weight",
                "conv4.bias",
                "conv4.weight",
                "norm1.bias",
                "norm1.gain",
                "norm1.stored_mean",
                "norm1.stored_var",
                "norm2.bias",
                "norm2.gain",
                "norm2.stored_mean",
                "norm2.stored_var",
                "norm3.bias",
                "norm3.gain",
                "norm3.stored_mean",
                "norm3.stored_var",
            ]
        );
        // 256 → 128 → 64 → 32, then two stride-1 4×4 layers with padding 1: 31, 30.
        let x = Tensor::randn([2, 6, 256, 256], (Kind::Float, Device::Cpu));
        assert_eq!(d.forward(&x, true).size(), [2, 1, 30, 30]);
    }

    #[test]
    fn instance_norm_adds_biases_and_no_parameters_of_its_own() {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = PatchGanConfig { in_channels: 3, ndf: 8, n_layers: 2, norm: Norm::Instance };
        let d = PatchGan::new(&vs.root(), &config);
        let mut names: Vec<_> = vs.variables().into_keys().collect();
        names.sort();
        let expected: Vec<String> = (0..4).flat_map(|i| [format!("conv{i}.bias"), format!("conv{i}.weight")]).collect();
        assert_eq!(names, expected);
        let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        // 32 → 16 → 8, then 7, 6.
        assert_eq!(d.forward(&x, false).size(), [1, 1, 6, 6]);
    }

    #[test]
    fn weights_start_as_the_official_normal_init() {
        let _rng = rng_lock();
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let _d = PatchGan::new(&vs.root(), &PatchGanConfig::default());
        let vars = vs.variables();
        let w = &vars["conv3.weight"];
        let (mean, std) = (w.mean(Kind::Double).double_value(&[]), w.std(true).double_value(&[]));
        assert!(mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3, "conv weights: mean {mean}, std {std}");
        let g = &vars["norm3.gain"];
        let (mean, std) = (g.mean(Kind::Double).double_value(&[]), g.std(true).double_value(&[]));
        assert!((mean - 1.0).abs() < 5e-3 && (std - 0.02).abs() < 5e-3, "gains: mean {mean}, std {std}");
        for name in ["conv0.bias", "conv4.bias", "norm3.bias", "norm3.stored_mean"] {
            assert_eq!(vars[name].abs().sum(Kind::Double).double_value(&[]), 0.0, "{name} starts at 0");
        }
    }
}
