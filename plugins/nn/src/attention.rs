//! SAGAN's self-attention block (Zhang, Goodfellow, Metaxas & Odena, "Self-Attention Generative
//! Adversarial Networks", ICML 2019), in the form of the official code's `sn_non_local_block_sim`
//! and of StudioGAN: queries and keys are 1×1 convolutions to C/8 channels, values to C/2; keys
//! and values are 2×2 max-pooled, so each of the H·W query positions attends over H·W/4 key
//! positions; the softmax runs over the keys; a 1×1 convolution takes the attended values back
//! to C channels, scaled by a learned γ that starts at 0, and the input is added back.
//!
//! With γ = 0 the block is exactly the identity, so a network starts as the same network without
//! attention and learns how much non-local evidence to use. The attention map can be returned
//! for pictures ([`SelfAttention::forward_with_map`], [`attention_to_image`]).
use lab_plugin_api::tch::{Kind, Tensor};

use crate::layers::Conv2d;

/// The self-attention block. Its convolutions carry no bias (as in the official code) and may be
/// spectrally normalised; like the other layers of this crate it holds variables its
/// architecture created (see [`crate::layers`]).
#[derive(Debug)]
pub struct SelfAttention {
    /// f in the paper (θ in the official code): C → C/8.
    query: Conv2d,
    /// g in the paper (φ): C → C/8, then max-pooled.
    key: Conv2d,
    /// h in the paper (g in the official code): C → C/2, then max-pooled.
    value: Conv2d,
    /// v in the paper: C/2 → C, applied to the attended values.
    output: Conv2d,
    /// The scalar γ (`[1]`) on the attention branch; the architecture creates it as 0.
    gamma: Tensor,
}

impl SelfAttention {
    /// The block from its four 1×1 convolutions and its gain γ (`[1]`).
    pub fn new(query: Conv2d, key: Conv2d, value: Conv2d, output: Conv2d, gamma: Tensor) -> Self {
        Self { query, key, value, output, gamma }
    }

    /// `x + γ · output(attended values)` for `x` `[N, C, H, W]` with even H and W.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_with_map(x, train).0
    }

    /// The block's output and its attention map `[N, H·W, H·W/4]`: row `i·W + j` holds the
    /// weights query pixel (i, j) gives the pooled key positions (a softmax, so each row sums
    /// to 1), which are laid out as an `(H/2) × (W/2)` grid in row-major order.
    pub fn forward_with_map(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let size = x.size();
        let (n, h, w) = (size[0], size[2], size[3]);
        let query = self.query.forward(x, train).flatten(2, 3); // [N, C/8, HW]
        let key = pool(&self.key.forward(x, train)).flatten(2, 3); // [N, C/8, HW/4]
        let value = pool(&self.value.forward(x, train)).flatten(2, 3); // [N, C/2, HW/4]
        let map = query.transpose(1, 2).bmm(&key).softmax(-1, x.kind()); // [N, HW, HW/4]
        let attended = value.bmm(&map.transpose(1, 2)).view([n, -1, h, w]); // [N, C/2, H, W]
        (x + &self.gamma * self.output.forward(&attended, train), map)
    }

    /// γ, the weight of the attention branch.
    pub fn gamma(&self) -> &Tensor {
        &self.gamma
    }
}

/// 2×2 max pooling with stride 2: the official code's subsampling of keys and values, which
/// quarters the cost of the attention map.
fn pool(x: &Tensor) -> Tensor {
    x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
}

/// The attention one query pixel `(row, col)` of an `h × w` map gives the `(h/2) × (w/2)` pooled
/// key positions, for every image of `map` (`[N, h·w, h·w/4]`, from
/// [`SelfAttention::forward_with_map`]), upsampled to `h × w` and scaled so that each image's
/// largest weight is 1: `[N, 1, h, w]` in [0, 1], ready to be shown as a grey image.
pub fn attention_to_image(map: &Tensor, (row, col): (i64, i64), (h, w): (i64, i64)) -> Tensor {
    let n = map.size()[0];
    let weights = map.select(1, row * w + col).to_kind(Kind::Float).view([n, 1, h / 2, w / 2]);
    let peak = weights.amax([2i64, 3].as_slice(), true);
    crate::layers::upsample(&(weights / peak))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Weight;
    use lab_plugin_api::tch::{self, Device};
    use lab_plugin_testkit::rng_lock;

    fn conv(c_in: i64, c_out: i64) -> Conv2d {
        let w = Tensor::randn([c_out, c_in, 1, 1], (Kind::Double, Device::Cpu));
        Conv2d::new(Weight::Plain(w), None, 1, 0)
    }

    fn block(channels: i64, gamma: f64) -> SelfAttention {
        let c = channels;
        let gamma = Tensor::from_slice(&[gamma]);
        SelfAttention::new(conv(c, c / 8), conv(c, c / 8), conv(c, c / 2), conv(c / 2, c), gamma)
    }

    #[test]
    fn with_gamma_zero_the_block_is_the_identity_and_rows_sum_to_one() {
        let _rng = rng_lock();
        tch::manual_seed(0);
        let x = Tensor::randn([3, 16, 8, 6], (Kind::Double, Device::Cpu));
        let (out, map) = block(16, 0.0).forward_with_map(&x, true);
        assert!(out.equal(&x), "γ = 0: exactly the input");
        assert_eq!(map.size(), [3, 48, 12], "8·6 queries over 4·3 pooled keys");
        let sums = map.sum_dim_intlist([2i64].as_slice(), false, Kind::Double);
        assert!(sums.allclose(&Tensor::ones_like(&sums), 0.0, 1e-12, false));
        assert!(map.min().double_value(&[]) > 0.0, "a softmax: every weight positive");
    }

    /// The block written out for one image, query and channel, against the batched code.
    #[test]
    fn matches_the_definition_pixel_by_pixel() {
        let _rng = rng_lock();
        tch::manual_seed(1);
        let x = Tensor::randn([2, 8, 4, 4], (Kind::Double, Device::Cpu));
        let w_out = Tensor::randn([8, 4, 1, 1], (Kind::Double, Device::Cpu));
        let out_conv = Conv2d::new(Weight::Plain(w_out.shallow_clone()), None, 1, 0);
        let b = SelfAttention::new(conv(8, 1), conv(8, 1), conv(8, 4), out_conv, Tensor::from_slice(&[0.7f64]));
        let (out, map) = b.forward_with_map(&x, false);
        let (f, g, h) = (b.query.forward(&x, false), b.key.forward(&x, false), b.value.forward(&x, false));
        // Pooled keys and values of image 1: the max over each 2×2 cell, key k at cell (k / 2, k % 2).
        let cell_max = |t: &Tensor, c: i64, k: i64| {
            t.get(1).get(c).narrow(0, 2 * (k / 2), 2).narrow(1, 2 * (k % 2), 2).max().double_value(&[])
        };
        // Query pixel (3, 2) of image 1 is row 3·4 + 2 = 14; one query/key channel (8 / 8).
        let scores: Vec<f64> = (0..4).map(|k| f.double_value(&[1, 0, 3, 2]) * cell_max(&g, 0, k)).collect();
        let total: f64 = scores.iter().map(|s| s.exp()).sum();
        for (k, s) in scores.iter().enumerate() {
            let expected = s.exp() / total;
            assert!((map.double_value(&[1, 14, k as i64]) - expected).abs() < 1e-12, "key {k}");
        }
        let attended: Vec<f64> =
            (0..4).map(|c| (0..4).map(|k| map.double_value(&[1, 14, k]) * cell_max(&h, c, k)).sum()).collect();
        for o in [0i64, 5] {
            let branch: f64 = (0..4).map(|c| w_out.double_value(&[o, c, 0, 0]) * attended[c as usize]).sum();
            let expected = x.double_value(&[1, o, 3, 2]) + 0.7 * branch;
            assert!((out.double_value(&[1, o, 3, 2]) - expected).abs() < 1e-12, "channel {o}");
        }
    }

    #[test]
    fn the_picture_of_a_query_is_its_row_upsampled_and_peak_normalised() {
        let map = Tensor::zeros([1, 16, 4], (Kind::Double, Device::Cpu));
        map.get(0).get(5).copy_(&Tensor::from_slice(&[0.1f64, 0.2, 0.3, 0.4]));
        let image = attention_to_image(&map, (1, 1), (4, 4));
        assert_eq!(image.size(), [1, 1, 4, 4]);
        let top = [0.25f32, 0.25, 0.5, 0.5];
        let bottom = [0.75f32, 0.75, 1.0, 1.0];
        let expected = Tensor::from_slice(&[top, top, bottom, bottom].concat()).view([1, 1, 4, 4]);
        assert!(image.allclose(&expected, 0.0, 1e-6, false), "{image}");
    }
}
