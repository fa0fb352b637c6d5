//! Batch normalisation over channels with its running statistics as buffers, the
//! class-conditional variant of BigGAN and SNGAN (a gain and a bias per class, read from
//! embeddings), and the choice between batch and instance norm that the image-to-image
//! networks (pix2pix, CycleGAN) take from their config ([`Norm`], [`NormLayer`]).
//!
//! The statistics are buffers in the network's VarStore (`p/stored_mean`, `p/stored_var`, the
//! names BigGAN-PyTorch gives them), so they are checkpointed and moved by the core with the
//! weights, and only training-mode passes update them.
use std::fmt;
use std::str::FromStr;

use lab_plugin_api::tch::{nn, Tensor};
use serde::{Deserialize, Serialize};

use crate::layers::Embedding;

/// tch's batch norm configured as PyTorch's `nn.BatchNorm1d/2d` starts: γ = 1, β = 0, running
/// statistics with momentum 0.1, and `eps`. tch's `BatchNormConfig::default()` draws γ from
/// U(0, 1) instead, which starts some units nearly switched off; reproductions of reference code
/// (PyTorch, TensorFlow, deeppy: all start γ at 1) build their batch norms with this.
pub fn reference_batch_norm(eps: f64) -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        eps,
        momentum: 0.1,
        ..Default::default()
    }
}

/// The normalisation of an image-to-image network, as a config names it: `"batch"` or
/// `"instance"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// Batch norm with a learned gain and bias and running statistics (pix2pix's default).
    #[default]
    Batch,
    /// Instance norm without a learned affine and without running statistics (CycleGAN's).
    Instance,
}

impl Norm {
    /// Whether a convolution followed by this norm carries a bias: batch norm's own bias makes
    /// one redundant, instance norm has none (the official pix2pix/CycleGAN rule).
    pub fn conv_bias(self) -> bool {
        self == Norm::Instance
    }

    /// A norm over `channels` channels under `p`: batch norm's gain starts at `gain_init`
    /// (`p/gain`), its bias at 0 (`p/bias`), with PyTorch's eps 1e-5 and momentum 0.1.
    pub fn layer(self, p: &nn::Path, channels: i64, gain_init: nn::Init) -> NormLayer {
        match self {
            Norm::Batch => {
                let gain = p.var("gain", &[channels], gain_init);
                let bias = p.zeros("bias", &[channels]);
                NormLayer::Batch(BatchNorm2d::with_affine(p, gain, bias, 1e-5, 0.1))
            }
            Norm::Instance => NormLayer::Instance { eps: 1e-5 },
        }
    }
}

impl FromStr for Norm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "batch" => Ok(Norm::Batch),
            "instance" => Ok(Norm::Instance),
            other => Err(format!("unknown norm `{other}`; expected \"batch\" or \"instance\"")),
        }
    }
}

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Norm::Batch => "batch",
            Norm::Instance => "instance",
        })
    }
}

/// A batch or instance norm layer, as [`Norm::layer`] builds it.
#[derive(Debug)]
pub enum NormLayer {
    Batch(BatchNorm2d),
    /// Each image's channels normalised by their own mean and variance; no parameters.
    Instance {
        eps: f64,
    },
}

impl NormLayer {
    /// Normalises `x` (`[N, C, H, W]`): batch norm with batch statistics in training (updating
    /// the running ones) and the running ones otherwise; instance norm always per image.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            NormLayer::Batch(bn) => bn.forward(x, None, train),
            NormLayer::Instance { eps } => instance_norm(x, *eps),
        }
    }

    /// Normalises `x` with the statistics of the batch itself and leaves the running ones as
    /// they are: pix2pix's test protocol, which runs the generator at test time as in training.
    pub fn forward_on_batch_statistics(&self, x: &Tensor) -> Tensor {
        match self {
            NormLayer::Batch(bn) => bn.forward_on_batch_statistics(x),
            NormLayer::Instance { eps } => instance_norm(x, *eps),
        }
    }
}

/// Instance norm without affine or running statistics (`nn.InstanceNorm2d(affine=False)`).
fn instance_norm(x: &Tensor, eps: f64) -> Tensor {
    Tensor::instance_norm(x, None::<Tensor>, None::<Tensor>, None::<Tensor>, None::<Tensor>, true, 0.1, eps, false)
}

/// How a batch norm rescales the normalised activations.
#[derive(Debug)]
enum Affine {
    /// One learned gain (from 1) and bias (from 0) per channel: `p/gain`, `p/bias`.
    Shared { gain: Tensor, bias: Tensor },
    /// A gain and a bias per class, from embeddings `[classes, channels]`; the gain applied is
    /// `1 + gain[y]`, so an embedding that starts at zero starts as the identity.
    PerClass { gain: Embedding, bias: Embedding },
}

/// Batch norm over the channels of `[N, C, H, W]` maps.
#[derive(Debug)]
pub struct BatchNorm2d {
    mean: Tensor,
    var: Tensor,
    eps: f64,
    momentum: f64,
    affine: Affine,
}

impl BatchNorm2d {
    /// The running statistics: zeros and ones, no draw from the RNG.
    fn stats(p: &nn::Path, channels: i64) -> (Tensor, Tensor) {
        (p.zeros_no_train("stored_mean", &[channels]), p.ones_no_train("stored_var", &[channels]))
    }

    /// A learned per-channel gain `p/gain` (from 1) and bias `p/bias` (from 0). `momentum` is
    /// PyTorch's: the weight of the new batch in the running statistics.
    pub fn plain(p: &nn::Path, channels: i64, eps: f64, momentum: f64) -> Self {
        let (mean, var) = Self::stats(p, channels);
        let affine = Affine::Shared { gain: p.ones("gain", &[channels]), bias: p.zeros("bias", &[channels]) };
        Self { mean, var, eps, momentum, affine }
    }

    /// A learned per-channel `gain` and `bias` the caller created (how they start is the
    /// architecture's choice), with the running statistics under `p`.
    pub fn with_affine(p: &nn::Path, gain: Tensor, bias: Tensor, eps: f64, momentum: f64) -> Self {
        let (mean, var) = Self::stats(p, gain.size()[0]);
        Self { mean, var, eps, momentum, affine: Affine::Shared { gain, bias } }
    }

    /// Class-conditional batch norm: no per-channel affine of its own, but the gain
    /// `1 + gain[y]` and bias `bias[y]` of each image's class. The embeddings are built by the
    /// caller, since how they start is the architecture's choice.
    pub fn class_conditional(
        p: &nn::Path,
        channels: i64,
        gain: Embedding,
        bias: Embedding,
        eps: f64,
        momentum: f64,
    ) -> Self {
        let (mean, var) = Self::stats(p, channels);
        Self { mean, var, eps, momentum, affine: Affine::PerClass { gain, bias } }
    }

    /// Normalises `x` (`[N, C, H, W]`) with batch statistics in training (updating the running
    /// ones) and the running statistics otherwise, then applies the gain and bias; a
    /// class-conditional norm reads them from `labels`.
    ///
    /// # Panics
    /// A class-conditional norm without `labels`: the networks check for labels first.
    pub fn forward(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        let normalize = |gain: Option<&Tensor>, bias: Option<&Tensor>| {
            x.batch_norm(gain, bias, Some(&self.mean), Some(&self.var), train, self.momentum, self.eps, true)
        };
        match (&self.affine, labels) {
            (Affine::Shared { gain, bias }, _) => normalize(Some(gain), Some(bias)),
            (Affine::PerClass { gain, bias }, Some(y)) => {
                let n = x.size()[0];
                let g = gain.forward(y, train).reshape([n, -1, 1, 1]) + 1.0;
                let b = bias.forward(y, train).reshape([n, -1, 1, 1]);
                normalize(None, None) * g + b
            }
            (Affine::PerClass { .. }, None) => unreachable!("conditional networks check for labels first"),
        }
    }

    /// Normalises with the batch's own statistics without updating the running ones, then
    /// applies the shared gain and bias.
    ///
    /// # Panics
    /// A class-conditional norm: its gain and bias need labels.
    pub fn forward_on_batch_statistics(&self, x: &Tensor) -> Tensor {
        match &self.affine {
            Affine::Shared { gain, bias } => {
                x.batch_norm(Some(gain), Some(bias), None::<&Tensor>, None, true, self.momentum, self.eps, true)
            }
            Affine::PerClass { .. } => unreachable!("only plain batch norm is run on test-batch statistics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Weight;
    use lab_plugin_api::tch::{self, Device, Kind};
    use lab_plugin_testkit::rng_lock;

    #[test]
    fn plain_norm_is_libtorch_batch_norm_and_moves_its_statistics_only_in_training() {
        let _rng = rng_lock();
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = BatchNorm2d::plain(&(vs.root() / "bn"), 3, 1e-5, 0.1);
        let x = Tensor::randn([4, 3, 2, 2], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let expected = (&x - x.mean_dim([0i64, 2, 3].as_slice(), true, Kind::Float))
            / (x.var_dim([0i64, 2, 3].as_slice(), false, true) + 1e-5).sqrt();
        assert!(bn.forward(&x, None, true).allclose(&expected, 1e-5, 1e-5, false));
        let vars = vs.variables();
        let mean = vars["bn.stored_mean"].copy();
        assert!(mean.abs().sum(Kind::Float).double_value(&[]) > 0.0, "training moved the mean");
        let _ = bn.forward(&x, None, false);
        assert!(vs.variables()["bn.stored_mean"].equal(&mean), "evaluation did not");
        assert!(!vars["bn.stored_var"].requires_grad() && vars["bn.gain"].requires_grad());
    }

    #[test]
    fn class_conditional_norm_reads_each_images_gain_and_bias() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root() / "bn";
        let table = |values: &[f32]| Embedding::new(Weight::Plain(Tensor::from_slice(values).view([2, 1])));
        // Class 0: gain 1 + 1 = 2, bias 0; class 1: gain 1 + 0 = 1, bias 5.
        let bn = BatchNorm2d::class_conditional(&p, 1, table(&[1.0, 0.0]), table(&[0.0, 5.0]), 1e-5, 0.1);
        let x = Tensor::from_slice(&[-1.0f32, 1.0]).view([2, 1, 1, 1]);
        let out = bn.forward(&x, Some(&Tensor::from_slice(&[0i64, 1])), true).flatten(0, -1);
        let normalised = 1.0 / (1.0f64 + 1e-5).sqrt();
        let expected = Tensor::from_slice(&[-2.0 * normalised, normalised + 5.0]).to_kind(Kind::Float);
        assert!(out.allclose(&expected, 1e-6, 1e-6, false), "{out}");
    }

    #[test]
    fn norm_names_parse_from_config_text_and_decide_the_conv_bias() {
        assert_eq!("batch".parse::<Norm>(), Ok(Norm::Batch));
        assert_eq!("instance".parse::<Norm>(), Ok(Norm::Instance));
        assert!("group".parse::<Norm>().unwrap_err().contains("expected \"batch\" or \"instance\""));
        #[derive(Default, Serialize, Deserialize)]
        struct Config {
            norm: Norm,
        }
        let config: Config = lab_plugin_api::config::parse("norm = \"instance\"").unwrap();
        assert_eq!(config.norm, Norm::Instance);
        let err = lab_plugin_api::config::parse::<Config>("norm = \"layer\"").err().unwrap().to_string();
        assert!(err.contains("batch") && err.contains("instance"), "{err}");
        assert_eq!(Norm::Instance.to_string(), "instance");
        assert!(Norm::Instance.conv_bias() && !Norm::Batch.conv_bias());
    }

    #[test]
    fn instance_norm_normalises_each_image_and_batch_statistics_leave_the_running_ones() {
        let vs = nn::VarStore::new(Device::Cpu);
        let x = Tensor::randn([2, 3, 4, 4], (Kind::Double, Device::Cpu)) * 2.0 + 3.0;
        let instance = Norm::Instance.layer(&(vs.root() / "in"), 3, nn::Init::Const(1.0));
        let y = instance.forward(&x, false);
        let mean = y.mean_dim([2i64, 3].as_slice(), false, Kind::Double);
        assert!(mean.abs().max().double_value(&[]) < 1e-12, "each image's channels are centred");
        assert!(vs.variables().is_empty(), "instance norm has no variables");

        let batch = Norm::Batch.layer(&(vs.root() / "bn"), 3, nn::Init::Const(1.0));
        let x = x.to_kind(Kind::Float);
        let y = batch.forward_on_batch_statistics(&x);
        assert!(vs.variables()["bn.stored_mean"].equal(&Tensor::zeros([3], (Kind::Float, Device::Cpu))));
        assert!(y.allclose(&batch.forward(&x, true), 1e-5, 1e-5, false), "the training-mode normalisation");
        assert!(!vs.variables()["bn.stored_mean"].equal(&Tensor::zeros([3], (Kind::Float, Device::Cpu))));
    }
}
