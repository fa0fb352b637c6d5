//! Batch normalisation over channels with its running statistics as buffers, and the
//! class-conditional variant of BigGAN and SNGAN (a gain and a bias per class, read from
//! embeddings).
//!
//! The statistics are buffers in the network's VarStore (`p/stored_mean`, `p/stored_var`, the
//! names BigGAN-PyTorch gives them), so they are checkpointed and moved by the core with the
//! weights, and only training-mode passes update them.
use lab_plugin_api::tch::{nn, Tensor};

use crate::layers::Embedding;

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
}
