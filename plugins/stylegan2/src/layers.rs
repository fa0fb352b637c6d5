//! StyleGAN2's layers (Karras et al. 2020, and stylegan2-ada-pytorch's `training/networks.py`):
//! equalised learning rate, the [1, 3, 3, 1] low-pass filter around every change of
//! resolution, modulated and demodulated convolutions, and the minibatch standard deviation.
//!
//! **Equalised learning rate.** Every weight is stored as N(0, 1/m²) and multiplied at run time
//! by m/√fan_in (m = 1 except in the mapping networks, m = 0.01), so an optimizer that
//! normalises its steps (Adam) moves every layer's effective weights at the same relative rate,
//! and the mapping network's m times slower. Biases are stored ×1/m and used ×m.
//!
//! **Resampling.** Upsampling inserts zeros between pixels and low-passes with the separable
//! filter [1, 3, 3, 1]⊗[1, 3, 3, 1]/64 scaled by 4; downsampling low-passes, then keeps every
//! other pixel. The 3×3 convolutions that change resolution are computed as the official fast
//! paths do (a stride-2 transposed convolution then the filter going up; the filter then a
//! stride-2 convolution going down); the PyTorch reference of the tests takes the generic path
//! (zero insertion, padding, filter, convolution), so the two agreeing checks the fast paths.
//!
//! **Activations** (`bias_act`): add the bias, apply leaky ReLU (slope 0.2) scaled by √2 to keep
//! the signal's variance, then clamp to ±`conv_clamp` when set.
use lab_plugin_api::tch::{nn, Tensor};

/// The leaky ReLU's slope and the gain that keeps its output's second moment.
const LRELU_SLOPE: f64 = 0.2;
const LRELU_GAIN: f64 = std::f64::consts::SQRT_2;

/// The activation after a layer's bias.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Linear,
    LeakyRelu,
}

impl Activation {
    /// The gain that comes with the activation (`def_gain`): √2 for leaky ReLU, 1 for linear.
    fn gain(self) -> f64 {
        match self {
            Activation::Linear => 1.0,
            Activation::LeakyRelu => LRELU_GAIN,
        }
    }
}

/// `bias_act`: x + b (over dim 1), the activation, × `gain`, clamped to ±`clamp`.
pub fn bias_act(x: &Tensor, bias: Option<&Tensor>, act: Activation, gain: f64, clamp: Option<f64>) -> Tensor {
    let mut x = match bias {
        Some(b) => {
            let mut shape = vec![1; x.dim()];
            shape[1] = -1;
            x + b.view(shape.as_slice())
        }
        None => x.shallow_clone(),
    };
    if act == Activation::LeakyRelu {
        x = lab_nn::ops::leaky_relu(&x, LRELU_SLOPE);
    }
    if gain != 1.0 {
        // Not `*=`: that is an in-place product, and `x` may still be the caller's tensor.
        x = x.g_mul_scalar(gain);
    }
    match clamp {
        Some(c) => x.clamp(-c, c),
        None => x,
    }
}

/// `FullyConnectedLayer`: y = act(x·(m/√in)·Wᵀ + m·b), W stored as N(0, 1/m²).
#[derive(Debug)]
pub struct FullyConnected {
    weight: Tensor,
    bias: Option<Tensor>,
    weight_gain: f64,
    bias_gain: f64,
    activation: Activation,
}

impl FullyConnected {
    /// The bias starts at `bias_init` as stored (the official code's `torch.full`), so it is
    /// used as m·bias_init; only the affine layers (m = 1, bias_init = 1) start away from 0.
    pub fn new(
        p: &nn::Path,
        in_features: i64,
        out_features: i64,
        activation: Activation,
        lr_multiplier: f64,
        bias_init: f64,
    ) -> Self {
        let weight = p.randn("weight", &[out_features, in_features], 0.0, 1.0 / lr_multiplier);
        let bias = Some(p.var("bias", &[out_features], nn::Init::Const(bias_init)));
        Self {
            weight,
            bias,
            weight_gain: lr_multiplier / (in_features as f64).sqrt(),
            bias_gain: lr_multiplier,
            activation,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let w = &self.weight * self.weight_gain;
        let b = self.bias.as_ref().map(|b| if self.bias_gain != 1.0 { b * self.bias_gain } else { b.shallow_clone() });
        let x = x.matmul(&w.tr());
        bias_act(&x, b.as_ref(), self.activation, self.activation.gain(), None)
    }
}

/// The low-pass filter [1, 3, 3, 1]⊗[1, 3, 3, 1], normalised to sum 1 and scaled by `gain`, as
/// a depthwise kernel `[channels, 1, 4, 4]` of `like`'s kind and device.
fn filter(channels: i64, gain: f64, like: &Tensor) -> Tensor {
    let taps = Tensor::from_slice(&[1.0f64, 3.0, 3.0, 1.0]);
    let f = taps.outer(&taps) / 64.0 * gain;
    f.to_kind(like.kind()).to_device(like.device()).view([1, 1, 4, 4]).expand([channels, 1, 4, 4], false)
}

/// Pads by `[left, right, top, bottom]`, then applies the filter (× `gain`) to each channel.
fn fir(x: &Tensor, pad: [i64; 4], gain: f64) -> Tensor {
    let channels = x.size()[1];
    x.constant_pad_nd(pad).conv2d(&filter(channels, gain, x), None::<Tensor>, [1, 1], [0, 0], [1, 1], channels)
}

/// `upsample2d`: zeros between pixels, then the filter × 4 (so a constant image stays constant).
pub fn upsample2d(x: &Tensor) -> Tensor {
    let [n, c, h, w] = x.size()[..] else { unreachable!("images are NCHW") };
    let spread = x.view([n, c, h, 1, w, 1]).constant_pad_nd([0, 1, 0, 0, 0, 1]).view([n, c, 2 * h, 2 * w]);
    fir(&spread, [2, 1, 2, 1], 4.0)
}

/// `downsample2d`: the filter, then every other pixel.
pub fn downsample2d(x: &Tensor) -> Tensor {
    fir(x, [1, 1, 1, 1], 1.0).slice(2, 0, None, 2).slice(3, 0, None, 2)
}

/// A convolution with "same" padding, at the input's resolution, or one that doubles it (`up`)
/// or halves it (`down`) with the low-pass filter; `weight` is already scaled.
pub fn conv2d_resample(x: &Tensor, weight: &Tensor, up: bool, down: bool) -> Tensor {
    let k = weight.size()[2];
    match (up, down, k) {
        (false, false, _) => x.conv2d(weight, None::<Tensor>, [1, 1], [k / 2, k / 2], [1, 1], 1),
        // Going up, a 3×3 convolution: the transposed convolution spreads each pixel over a
        // 2·size + 1 canvas, and the filter (padded by 1) trims and smooths it to 2·size.
        (true, false, 3) => {
            let spread = x.conv_transpose2d(&weight.transpose(0, 1), None::<Tensor>, [2, 2], [0, 0], [0, 0], 1, [1, 1]);
            fir(&spread, [1, 1, 1, 1], 4.0)
        }
        // Going down, a 3×3 convolution: filter the padded input, then a stride-2 convolution.
        (false, true, 3) => fir(x, [2, 2, 2, 2], 1.0).conv2d(weight, None::<Tensor>, [2, 2], [0, 0], [1, 1], 1),
        // A 1×1 convolution going down: downsample first (cheaper, and the same).
        (false, true, 1) => downsample2d(x).conv2d(weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1),
        _ => unreachable!("only the resampling convolutions StyleGAN2's G and D use"),
    }
}

/// `Conv2dLayer` (D's convolutions): an equalised-lr convolution, optionally halving the
/// resolution, with `bias_act`.
#[derive(Debug)]
pub struct Conv2dLayer {
    weight: Tensor,
    bias: Option<Tensor>,
    weight_gain: f64,
    activation: Activation,
    down: bool,
    clamp: Option<f64>,
}

impl Conv2dLayer {
    pub fn new(
        p: &nn::Path,
        in_channels: i64,
        out_channels: i64,
        kernel: i64,
        (bias, activation): (bool, Activation),
        down: bool,
        clamp: Option<f64>,
    ) -> Self {
        let weight = p.randn("weight", &[out_channels, in_channels, kernel, kernel], 0.0, 1.0);
        let bias = bias.then(|| p.zeros("bias", &[out_channels]));
        Self {
            weight,
            bias,
            weight_gain: 1.0 / ((in_channels * kernel * kernel) as f64).sqrt(),
            activation,
            down,
            clamp,
        }
    }

    /// `gain` scales the output (and the clamp): √½ on the two branches of a residual block.
    pub fn forward(&self, x: &Tensor, gain: f64) -> Tensor {
        let x = conv2d_resample(x, &(&self.weight * self.weight_gain), false, self.down);
        bias_act(&x, self.bias.as_ref(), self.activation, self.activation.gain() * gain, self.clamp.map(|c| c * gain))
    }
}

/// `normalize_2nd_moment`: x / √(mean(x²) + 1e-8) over dim 1.
pub fn normalize_2nd_moment(x: &Tensor) -> Tensor {
    x * (x.square().mean_dim([1i64].as_slice(), true, x.kind()) + 1e-8).rsqrt()
}

/// `modulated_conv2d` as stylegan2-ada computes it in training (not fused): the input scaled by
/// the styles, one convolution with the shared weight, the output scaled by the demodulation
/// coefficients 1/√(Σ_{i,k} (w_oik·s_i)² + 1e-8), then the noise added. Equal to convolving each
/// sample with its own modulated, demodulated weight (the fused form), by linearity.
pub fn modulated_conv2d(
    x: &Tensor,
    weight: &Tensor,
    styles: &Tensor,
    noise: Option<&Tensor>,
    up: bool,
    demodulate: bool,
) -> Tensor {
    let n = x.size()[0];
    let x = x * styles.view([n, -1, 1, 1]);
    let x = conv2d_resample(&x, weight, up, false);
    let x = if demodulate {
        // Σ_{i,k} (w_oik s_i)² = Σ_i s_i² Σ_k w_oik²: one [N, I] × [I, O] product.
        let per_input = weight.square().sum_dim_intlist([2i64, 3].as_slice(), false, weight.kind());
        let dcoefs = (styles.square().matmul(&per_input.tr()) + 1e-8).rsqrt();
        x * dcoefs.view([n, -1, 1, 1])
    } else {
        x
    };
    match noise {
        Some(noise) => x + noise,
        None => x,
    }
}

/// `MinibatchStdLayer`: appends, per group of `group_size` images, the standard deviation of
/// each feature across the group, averaged over features and pixels (per `channels` slices of
/// the feature maps), as `channels` extra constant maps. Image i belongs to group i mod (N/G).
///
/// The official layer needs the batch to be a multiple of the group (G = min(group_size, N));
/// the core also runs D on batches of other sizes (the last batch of an evaluation set, the
/// overfitting diagnostics), so there G is the largest divisor of N up to `group_size`, which is
/// the official group whenever the official layer accepts the batch.
pub fn minibatch_std(x: &Tensor, group_size: i64, channels: i64) -> Tensor {
    let [n, c, h, w] = x.size()[..] else { unreachable!("features are NCHW") };
    let g = (1..=group_size.min(n)).rev().find(|g| n % g == 0).unwrap_or(1);
    let y = x.reshape([g, -1, channels, c / channels, h, w]);
    let y = &y - y.mean_dim([0i64].as_slice(), false, y.kind());
    let y = (y.square().mean_dim([0i64].as_slice(), false, x.kind()) + 1e-8).sqrt();
    let y = y.mean_dim([2i64, 3, 4].as_slice(), false, x.kind()).reshape([-1, channels, 1, 1]);
    Tensor::cat(&[x.shallow_clone(), y.repeat([g, 1, h, w])], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::{self, Device, Kind};

    const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    /// Demodulation makes each output feature unit-variance for unit-variance inputs, whatever
    /// the styles' scale (the paper's eq. 3 assumes i.i.d. inputs; measured over many pixels).
    #[test]
    fn demodulation_restores_unit_variance_whatever_the_styles() {
        tch::manual_seed(0);
        let weight = Tensor::randn([64, 128, 3, 3], F64);
        let x = Tensor::randn([8, 128, 32, 32], F64);
        for scale in [0.01, 1.0, 30.0] {
            let styles = Tensor::randn([8, 128], F64) * scale;
            let y = modulated_conv2d(&x, &weight, &styles, None, false, true);
            // The border sees zero padding; the interior is where the assumption holds.
            let interior = y.slice(2, 1, -1, 1).slice(3, 1, -1, 1);
            let var = interior.square().mean(Kind::Double).double_value(&[]);
            println!("styles ×{scale}: output second moment {var:.4}");
            assert!((var - 1.0).abs() < 0.03, "{scale}: {var}");
            let plain = modulated_conv2d(&x, &weight, &styles, None, false, false);
            let plain_var = plain.square().mean(Kind::Double).double_value(&[]);
            assert!(!(0.5..=2.0).contains(&plain_var), "without demodulation the scale shows: {plain_var}");
        }
    }

    /// The demodulated convolution equals convolving each sample with its own weight
    /// w'_oik = s_i·w_oik / √(Σ (s_i w_oik)² + 1e-8) (the paper's eq. 1 and 3, the fused form).
    #[test]
    fn the_unfused_modulated_convolution_is_the_per_sample_one() {
        tch::manual_seed(1);
        let weight = Tensor::randn([5, 4, 3, 3], F64);
        let x = Tensor::randn([3, 4, 6, 6], F64);
        let styles = Tensor::randn([3, 4], F64);
        for up in [false, true] {
            let ours = modulated_conv2d(&x, &weight, &styles, None, up, true);
            for i in 0..3 {
                let w = &weight * styles.get(i).view([1, 4, 1, 1]);
                let w = &w * (w.square().sum_dim_intlist([1i64, 2, 3].as_slice(), true, Kind::Double) + 1e-8).rsqrt();
                let one = conv2d_resample(&x.narrow(0, i, 1), &w, up, false);
                assert!(max_abs(&(one - ours.narrow(0, i, 1))) < 1e-12, "sample {i}, up {up}");
            }
        }
    }

    /// Equalised lr: W is stored N(0, 1/m²) and used × m/√fan_in, so the effective weights have
    /// std 1/√fan_in whatever m, and a unit step on the stored weight moves the effective one
    /// by m/√fan_in.
    #[test]
    fn equalised_learning_rate_scales_weights_at_run_time() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let fc = FullyConnected::new(&(vs.root() / "fc"), 400, 300, Activation::Linear, 0.01, 0.0);
        let stored = fc.weight.std(true).double_value(&[]);
        assert!((stored - 100.0).abs() < 1.0, "stored ×1/m: {stored}");
        let x = Tensor::eye(400, (Kind::Float, Device::Cpu));
        let effective = fc.forward(&x);
        let std = effective.std(true).double_value(&[]);
        assert!((std - 1.0 / 20.0).abs() < 0.001, "used × m/√fan_in: {std}");
        let _ = tch::no_grad(|| fc.weight.shallow_clone().get(0).get(0).g_add_scalar_(1.0));
        let moved = fc.forward(&x).get(0).get(0).double_value(&[]) - effective.get(0).get(0).double_value(&[]);
        assert!((moved - 0.01 / 20.0).abs() < 1e-6, "{moved}");
    }

    /// Up- and downsampling keep a constant image constant away from the border, and the
    /// downsampling filter is the upsampling one's adjoint up to the factor 4 (⟨up x, y⟩ =
    /// 4⟨x, down y⟩ for the zero-padded versions): the same [1, 3, 3, 1] filter both ways.
    #[test]
    fn resampling_keeps_constants_and_is_self_adjoint() {
        let ones = Tensor::ones([1, 2, 8, 8], F64);
        let up = upsample2d(&ones);
        assert_eq!(up.size(), [1, 2, 16, 16]);
        assert!(max_abs(&(up.slice(2, 2, -2, 1).slice(3, 2, -2, 1) - 1.0)) < 1e-12);
        let down = downsample2d(&ones);
        assert_eq!(down.size(), [1, 2, 4, 4]);
        assert!(max_abs(&(down.slice(2, 1, -1, 1).slice(3, 1, -1, 1) - 1.0)) < 1e-12);
        tch::manual_seed(3);
        let (x, y) = (Tensor::randn([1, 1, 8, 8], F64), Tensor::randn([1, 1, 16, 16], F64));
        let lhs = (upsample2d(&x) * &y).sum(Kind::Double).double_value(&[]);
        let rhs = 4.0 * (&x * downsample2d(&y)).sum(Kind::Double).double_value(&[]);
        assert!((lhs - rhs).abs() < 1e-10, "{lhs} vs {rhs}");
    }

    /// The group statistic by hand: with groups of 2 in a batch of 4, images 0 and 2 form one
    /// group and 1 and 3 the other.
    #[test]
    fn minibatch_std_groups_images_by_stride() {
        let x = Tensor::from_slice(&[0.0f64, 10.0, 2.0, 10.0]).view([4, 1, 1, 1]).expand([4, 2, 2, 2], false);
        let y = minibatch_std(&x.contiguous(), 2, 1);
        assert_eq!(y.size(), [4, 3, 2, 2]);
        let stat: Vec<f64> = (0..4).map(|i| y.get(i).get(2).get(0).get(0).double_value(&[])).collect();
        let expected = (1.0f64 + 1e-8).sqrt();
        assert!((stat[0] - expected).abs() < 1e-12 && (stat[2] - expected).abs() < 1e-12, "{stat:?}");
        assert!((stat[1] - 1e-4).abs() < 1e-12 && (stat[3] - 1e-4).abs() < 1e-12, "{stat:?}");
        // A batch of 6 with groups of 4: groups of 3 (images 0, 2, 4 and 1, 3, 5), not an error.
        let x = Tensor::from_slice(&[0.0f64, 5.0, 1.0, 5.0, 2.0, 5.0]).view([6, 1, 1, 1]);
        let y = minibatch_std(&x, 4, 1);
        let expected = (2.0f64 / 3.0 + 1e-8).sqrt();
        assert!((y.double_value(&[0, 1, 0, 0]) - expected).abs() < 1e-12);
        assert!((y.double_value(&[1, 1, 0, 0]) - 1e-4).abs() < 1e-12);
    }
}
