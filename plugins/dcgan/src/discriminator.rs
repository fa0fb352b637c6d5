//! DCGAN's discriminator: strided convolutions that halve the side with LeakyReLU(0.2), a final
//! convolution covering the whole last feature map to one logit, and, for conditional models,
//! a projection term (Miyato & Koyama, 2018).
use lab_nn::{gan, with_projection};
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::{DNorm, Settings};
use crate::geometry::Geometry;
use crate::layers::{conv2d, embedding, Conv2d, ConvSpec, Embedding, Norm2d, LEAKY_RELU};

/// One downsampling step: ½ side, norm, LeakyReLU.
#[derive(Debug)]
struct DownBlock {
    conv: Conv2d,
    norm: Norm2d,
}

impl DownBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.norm.forward(&self.conv.forward(x, train), train).apply(&LEAKY_RELU)
    }
}

/// The discriminator network. Its variables are `block<i>.conv.*`, `block<i>.bn.*`, `out.*` and
/// `embed.weight` (conditional); spectrally normalised weights carry a `weight_u` buffer.
#[derive(Debug)]
pub struct Discriminator {
    blocks: Vec<DownBlock>,
    out: Conv2d,
    embed: Option<Embedding>,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let geometry = Geometry::for_resolution(s.resolution);
        // The mirror image of the generator: largest feature map (fewest channels) first.
        let mut widths = geometry.widths(s.d_channels);
        widths.reverse();
        let spectral = s.d_norm == DNorm::Spectral;
        let features = *widths.last().expect("at least two feature maps");
        // A kernel as large as the last map is DCGAN's "flatten + linear" written as a convolution.
        let side = geometry.base_side;
        let out = ConvSpec { in_channels: features, out_channels: 1, kernel: side, stride: 1, padding: 0, bias: true };
        // DCGAN's 0.02 scale keeps the projection term small at the start, like the logit.
        let embed = s.classes.map(|k| embedding(&p / "embed", k, features, 0.02, spectral));
        Self {
            blocks: down_blocks(&p, s.image_channels, &widths, s.d_norm),
            out: conv2d(&p / "out", out, spectral),
            embed,
        }
    }
}

impl gan::Discriminator for Discriminator {
    /// `features` is the last feature map summed over space (what the projection term and
    /// auxiliary heads read).
    fn discriminate(&self, x: &Tensor, y: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        for block in &self.blocks {
            h = block.forward(&h, train);
        }
        let logits = self.out.forward(&h, train).flatten(0, -1);
        let features = h.sum_dim_intlist([2i64, 3].as_slice(), false, h.kind());
        // Projection: the class-dependent part of the logit is ⟨embed(y), φ(x)⟩.
        (with_projection(logits, &features, self.embed.as_ref().zip(y), train), features)
    }
}

/// `block1`, `block2`, ...: from the image channels through every width in `widths`.
fn down_blocks(p: &nn::Path, image_channels: i64, widths: &[i64], d_norm: DNorm) -> Vec<DownBlock> {
    let ins = std::iter::once(image_channels).chain(widths.iter().copied());
    let pairs = ins.zip(widths.iter().copied()).enumerate();
    pairs
        .map(|(i, (c_in, c_out))| {
            let b = p / format!("block{}", i + 1);
            // Radford et al.: no batch norm on the layer that sees the images.
            let norm = match d_norm {
                DNorm::Batch if i > 0 => Norm2d::batch(&b / "bn", c_out),
                _ => Norm2d::Identity,
            };
            let spec = ConvSpec::k4s2(c_in, c_out, norm.is_identity());
            DownBlock { conv: conv2d(&b / "conv", spec, d_norm == DNorm::Spectral), norm }
        })
        .collect()
}
