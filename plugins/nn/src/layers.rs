//! Layers whose weight may be spectrally normalised, and the projection term of a projection
//! discriminator.
//!
//! They are written against raw tensors rather than `tch::nn` modules because spectral
//! normalisation replaces the weight at every forward pass. They hold already-created
//! variables and do not create any themselves: how weights and biases are initialised (and in
//! which order they draw from libtorch's global RNG, which decides the weights a seed gives) is
//! each architecture's own, so its constructors build the variables and hand them over.
use lab_plugin_api::tch::{nn, Tensor};

use crate::spectral_norm::{SnOptions, SpectralNorm};

/// A layer's weight: used as stored, or divided by its spectral norm.
#[derive(Debug)]
pub enum Weight {
    Plain(Tensor),
    Spectral(SpectralNorm),
}

impl Weight {
    /// Wraps `weight`, the variable `p/weight`; with `spectral`, normalised by those options,
    /// with its estimate in the buffer `p/weight_u` (drawn from the global RNG here).
    pub fn new(p: &nn::Path, weight: Tensor, spectral: Option<SnOptions>) -> Self {
        match spectral {
            Some(options) => Weight::Spectral(SpectralNorm::new(p, "weight", weight, options)),
            None => Weight::Plain(weight),
        }
    }

    /// The weight to use in this forward pass.
    pub fn get(&self, train: bool) -> Tensor {
        match self {
            Weight::Plain(w) => w.shallow_clone(),
            Weight::Spectral(sn) => sn.normalized(train),
        }
    }
}

/// A 2-D convolution with square strides and padding, no dilation and one group.
#[derive(Debug)]
pub struct Conv2d {
    weight: Weight,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    /// `weight` is `[out, in, k, k]`; `bias`, if any, `[out]`.
    pub fn new(weight: Weight, bias: Option<Tensor>, stride: i64, padding: i64) -> Self {
        Self { weight, bias, stride, padding }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let (s, p) = (self.stride, self.padding);
        x.conv2d(&self.weight.get(train), self.bias.as_ref(), [s, s], [p, p], [1, 1], 1)
    }
}

/// A fully connected layer.
#[derive(Debug)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

impl Linear {
    /// `weight` is `[out, in]`; `bias`, if any, `[out]`.
    pub fn new(weight: Weight, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.linear(&self.weight.get(train), self.bias.as_ref())
    }
}

/// A lookup table from class labels to vectors (`[classes, dim]`); spectral normalisation
/// treats the table as a `classes × dim` matrix.
#[derive(Debug)]
pub struct Embedding {
    weight: Weight,
}

impl Embedding {
    pub fn new(weight: Weight) -> Self {
        Self { weight }
    }

    /// `labels` (int64 `[N]`) → `[N, dim]`.
    pub fn forward(&self, labels: &Tensor, train: bool) -> Tensor {
        Tensor::embedding(&self.weight.get(train), labels, -1, false, false)
    }
}

/// 2× nearest-neighbour upsampling (`F.interpolate(scale_factor=2)`, chainer's
/// `unpooling_2d(x, 2)`): the residual generators' way up.
pub fn upsample(x: &Tensor) -> Tensor {
    let size = x.size();
    x.upsample_nearest2d([size[2] * 2, size[3] * 2], 2.0, 2.0)
}

/// 2×2 average pooling (`nn.AvgPool2d(2)`): the residual discriminators' way down.
pub fn downsample(x: &Tensor) -> Tensor {
    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
}

/// LeakyReLU with negative slope `slope` (tch's `leaky_relu` has a fixed slope of 0.01), as a
/// module: `nn::seq_t().add(leaky_relu(0.2))`, or `x.apply(&leaky_relu(0.2))`.
pub fn leaky_relu(slope: f64) -> LeakyRelu {
    LeakyRelu(slope)
}

/// See [`leaky_relu`].
///
/// libtorch's own `leaky_relu(x, slope)`, reached through a small C++ shim (`src/ops.cpp`)
/// because tch binds it without the slope: one kernel forward and one backward, as PyTorch's
/// `F.leaky_relu`. The two ways tch offers cost more on CPU: `x.maximum(0.2 x)`, whose backward
/// builds equality masks and masked fills (~20% of a DCGAN step), and PReLU with a constant
/// slope, whose backward also computes the slope's gradient as a full-size tensor (2–3.5× the
/// time of `F.leaky_relu` forward and backward on a 64×64×32×32 batch). All three give the same
/// values and gradients, bit for bit.
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu(pub f64);

impl nn::Module for LeakyRelu {
    fn forward(&self, x: &Tensor) -> Tensor {
        crate::ops::leaky_relu(x, self.0)
    }
}

/// The logits of a projection discriminator (Miyato & Koyama, 2018): `logits` (`[N]`) plus,
/// when `class` holds the class embedding and the labels, ⟨embed(y), φ(x)⟩ for the pooled
/// `features` φ(x) (`[N, F]`); the logits unchanged otherwise.
pub fn with_projection(logits: Tensor, features: &Tensor, class: Option<(&Embedding, &Tensor)>, train: bool) -> Tensor {
    match class {
        Some((embed, labels)) => {
            let projection = embed.forward(labels, train) * features;
            logits + projection.sum_dim_intlist([1i64].as_slice(), false, features.kind())
        }
        None => logits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectral_norm::{Eps, EvalStep};
    use lab_plugin_api::tch::{self, Device, Kind};
    use lab_plugin_testkit::rng_lock;

    const SN: SnOptions = SnOptions { eps: Eps::Floor(1e-8), eval: EvalStep::Iterate };

    #[test]
    fn plain_weights_are_used_as_stored_and_spectral_ones_normalised() {
        let _rng = rng_lock();
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let (plain, spectral) = (vs.root() / "plain", vs.root() / "spectral");
        let w = plain.randn("weight", &[4, 3], 0.0, 1.0);
        assert!(Weight::new(&plain, w.shallow_clone(), None).get(true).equal(&w));
        let w = spectral.randn("weight", &[4, 3], 0.0, 1.0);
        let sn = Weight::new(&spectral, w.shallow_clone(), Some(SN));
        let ratio = &w / sn.get(false);
        assert!(ratio.allclose(&ratio.mean(Kind::Float).expand([4, 3], false), 1e-5, 1e-6, false), "W / σ");
        let names: Vec<_> = vs.variables().into_keys().filter(|k| k.ends_with("_u")).collect();
        assert_eq!(names, ["spectral.weight_u"], "only the spectral weight carries a u buffer");
    }

    #[test]
    fn layers_compute_what_libtorch_computes() {
        let _rng = rng_lock();
        tch::manual_seed(1);
        let randn = |dims: &[i64]| Tensor::randn(dims, (Kind::Float, Device::Cpu));
        let (w, b, x) = (randn(&[5, 2, 3, 3]), randn(&[5]), randn(&[2, 2, 8, 8]));
        let conv = Conv2d::new(Weight::Plain(w.shallow_clone()), Some(b.shallow_clone()), 2, 1);
        assert!(conv.forward(&x, true).equal(&x.conv2d(&w, Some(&b), [2, 2], [1, 1], [1, 1], 1)));
        assert_eq!(Conv2d::new(Weight::Plain(w), None, 1, 1).forward(&x, false).size(), [2, 5, 8, 8]);

        let (w, x) = (randn(&[3, 4]), randn(&[2, 4]));
        let linear = Linear::new(Weight::Plain(w.shallow_clone()), Some(b.narrow(0, 0, 3)));
        assert!(linear.forward(&x, true).allclose(&(x.matmul(&w.tr()) + b.narrow(0, 0, 3)), 1e-6, 1e-6, false));

        let table = randn(&[10, 6]);
        let labels = Tensor::from_slice(&[3i64, 0, 3]);
        let rows = Embedding::new(Weight::Plain(table.shallow_clone())).forward(&labels, true);
        assert!(rows.equal(&table.index_select(0, &labels)));
    }

    #[test]
    fn projection_adds_the_class_term_only_with_labels() {
        let table = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0]).view([2, 2]);
        let embed = Embedding::new(Weight::Plain(table));
        let features = Tensor::from_slice(&[3.0f32, 4.0, 3.0, 4.0]).view([2, 2]);
        let logits = Tensor::from_slice(&[0.5f32, 0.5]);
        let labels = Tensor::from_slice(&[0i64, 1]);
        let out = with_projection(logits.shallow_clone(), &features, Some((&embed, &labels)), true);
        // Class 0 reads feature 0 (3), class 1 twice feature 1 (8).
        assert!(out.equal(&Tensor::from_slice(&[3.5f32, 8.5])));
        assert!(with_projection(logits.shallow_clone(), &features, None, true).equal(&logits));
    }
}
