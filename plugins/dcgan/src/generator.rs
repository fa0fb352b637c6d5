//! DCGAN's generator: z (and a label embedding) projected to the smallest feature map, then
//! transposed convolutions that double the side with batch norm and ReLU, then tanh.
use lab_nn::gan;
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::{GNorm, Settings};
use crate::geometry::Geometry;
use crate::layers::{embedding, linear, ConvSpec, ConvTranspose2d, Embedding, Linear, Norm2d};

/// One upsampling step: 2× side, norm, ReLU.
#[derive(Debug)]
struct UpBlock {
    conv: ConvTranspose2d,
    norm: Norm2d,
}

impl UpBlock {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.norm.forward(&self.conv.forward(x), train).relu()
    }
}

/// The generator network. Its variables are `embed.weight` (conditional), `fc.*`, `fc_bn.*`,
/// `block<i>.conv.*`, `block<i>.bn.*` and `out.*`.
#[derive(Debug)]
pub struct Generator {
    embed: Option<Embedding>,
    fc: Linear,
    fc_bn: Norm2d,
    /// `[channels, side, side]` of the projected feature map.
    base: [i64; 3],
    blocks: Vec<UpBlock>,
    out: ConvTranspose2d,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let geometry = Geometry::for_resolution(s.resolution);
        let widths = geometry.widths(s.g_channels);
        let batch_norm = s.g_norm == GNorm::Batch;
        // The label embedding has z's length, so class information weighs as much as the noise.
        let embed = s.classes.map(|k| embedding(&p / "embed", k, s.z_dim, 1.0, false));
        let fc_in = if embed.is_some() { 2 * s.z_dim } else { s.z_dim };
        let side = geometry.base_side;
        let last = *widths.last().expect("at least two feature maps");
        Self {
            embed,
            fc: linear(&p / "fc", fc_in, widths[0] * side * side, !batch_norm),
            fc_bn: norm(&p / "fc_bn", widths[0], batch_norm),
            base: [widths[0], side, side],
            blocks: up_blocks(&p, &widths, batch_norm),
            out: ConvTranspose2d::new(&p / "out", ConvSpec::k4s2(last, s.image_channels, true)),
        }
    }
}

impl gan::Generator for Generator {
    /// Images from z `[N, z_dim]`, joined by the label embedding for a conditional model.
    fn generate(&self, z: &Tensor, y: Option<&Tensor>, train: bool) -> Tensor {
        let h = match (&self.embed, y) {
            (Some(embed), Some(y)) => Tensor::cat(&[z.shallow_clone(), embed.forward(y, train)], 1),
            _ => z.shallow_clone(),
        };
        let n = h.size()[0];
        let [c, side, _] = self.base;
        let mut h = self.fc.forward(&h, train).reshape([n, c, side, side]);
        h = self.fc_bn.forward(&h, train).relu();
        for block in &self.blocks {
            h = block.forward(&h, train);
        }
        self.out.forward(&h).tanh()
    }
}

fn norm(p: nn::Path, channels: i64, batch_norm: bool) -> Norm2d {
    if batch_norm {
        Norm2d::batch(p, channels)
    } else {
        Norm2d::Identity
    }
}

/// `block1`, `block2`, ...: one per consecutive pair of feature-map widths.
fn up_blocks(p: &nn::Path, widths: &[i64], batch_norm: bool) -> Vec<UpBlock> {
    let pairs = widths.windows(2).enumerate();
    pairs
        .map(|(i, pair)| {
            let b = p / format!("block{}", i + 1);
            let conv = ConvTranspose2d::new(&b / "conv", ConvSpec::k4s2(pair[0], pair[1], !batch_norm));
            UpBlock { conv, norm: norm(&b / "bn", pair[1], batch_norm) }
        })
        .collect()
}
