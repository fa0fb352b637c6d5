//! LAPGAN's networks and pyramid: one generator network holding every level's generator (so the
//! core samples, averages and evaluates the whole pyramid as one `generator`), and one
//! discriminator per level (`discriminator_0` for the coarsest).
//!
//! The pyramid of an image I: I_K = I, I_{k−1} = d(I_k) with d the 2×2 mean; the coarse image of
//! level k is l_k = u(I_{k−1}) with u bilinear upsampling, and the band-pass image h_k = I_k − l_k.
//! (eyescream rescales with `image.scale`; the mean and bilinear interpolation are the usual
//! pair.) Sampling: Ĩ_0 = G_0(z), then Ĩ_k = u(Ĩ_{k−1}) + G_k(u(Ĩ_{k−1}), noise plane_k).
use lab_plugin_api::tch::{nn, Kind, Tensor};

use crate::config::Settings;

/// The 2×2 mean: one level down.
pub fn down(x: &Tensor) -> Tensor {
    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
}

/// Bilinear upsampling by 2: a level's coarse image from the level below.
pub fn up(x: &Tensor) -> Tensor {
    let size = x.size();
    x.upsample_bilinear2d([size[2] * 2, size[3] * 2], false, None, None)
}

/// The real images at every level, coarsest first (I_0, ..., I_K = `image`).
pub fn real_pyramid(image: &Tensor, levels: i64) -> Vec<Tensor> {
    let mut out = vec![image.shallow_clone()];
    for _ in 1..levels {
        let next = down(out.last().expect("at least the image"));
        out.push(next);
    }
    out.reverse();
    out
}

/// Torch7's default initialisation, which eyescream keeps: weights and biases U(±1/√fan_in).
fn torch7(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

fn linear(p: nn::Path, n_in: i64, n_out: i64) -> nn::Linear {
    let init = torch7(n_in);
    nn::linear(p, n_in, n_out, nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true })
}

fn conv(p: nn::Path, n_in: i64, n_out: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    let init = torch7(n_in * kernel * kernel);
    let config = nn::ConvConfig { stride, padding: kernel / 2, ws_init: init, bs_init: init, ..Default::default() };
    nn::conv2d(p, n_in, n_out, kernel, config)
}

/// A finer level's generator: [coarse image, noise plane] → 7×7 conv, ReLU, 7×7 conv, ReLU,
/// 5×5 conv → the band-pass image (same size, no output non-linearity).
#[derive(Debug)]
struct FineGenerator {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    conv3: nn::Conv2D,
}

impl FineGenerator {
    fn new(p: nn::Path, s: &Settings) -> Self {
        let (c, h) = (s.channels, s.g_channels);
        Self {
            conv1: conv(&p / "conv1", c + 1, h, 7, 1),
            conv2: conv(&p / "conv2", h, h, 7, 1),
            conv3: conv(&p / "conv3", h, c, 5, 1),
        }
    }

    fn band(&self, coarse: &Tensor, plane: &Tensor) -> Tensor {
        let x = Tensor::cat(&[coarse.shallow_clone(), plane.shallow_clone()], 1);
        x.apply(&self.conv1).relu().apply(&self.conv2).relu().apply(&self.conv3)
    }
}

/// Every level's generator in one network.
#[derive(Debug)]
pub struct Generator {
    coarsest: nn::Sequential,
    finer: Vec<FineGenerator>,
    s: Settings,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let side = s.sides[0];
        let level0 = &p / "level0";
        // The coarsest level: z → 1,200 ReLU → 1,200 ReLU → the image, through tanh (images are in
        // [−1, 1] here; eyescream normalises by the data's mean and std and stays linear).
        let coarsest = nn::seq()
            .add(linear(&level0 / "fc1", s.z_dim, s.g0_hidden))
            .add_fn(|x| x.relu())
            .add(linear(&level0 / "fc2", s.g0_hidden, s.g0_hidden))
            .add_fn(|x| x.relu())
            .add(linear(&level0 / "fc3", s.g0_hidden, s.channels * side * side))
            .add_fn(|x| x.tanh());
        let finer = (1..s.levels).map(|k| FineGenerator::new(&p / format!("level{k}"), s)).collect();
        Self { coarsest, finer, s: s.clone() }
    }

    /// The latent's parts: z `[N, z_dim]` and one noise plane `[N, 1, s_k, s_k]` per finer level.
    fn split(&self, latent: &Tensor) -> (Tensor, Vec<Tensor>) {
        let n = latent.size()[0];
        let z = latent.narrow(1, 0, self.s.z_dim);
        let mut start = self.s.z_dim;
        let planes = self.s.sides[1..]
            .iter()
            .map(|&side| {
                let plane = latent.narrow(1, start, side * side).reshape([n, 1, side, side]);
                start += side * side;
                plane
            })
            .collect();
        (z, planes)
    }

    fn coarsest(&self, z: &Tensor) -> Tensor {
        let side = self.s.sides[0];
        z.apply(&self.coarsest).reshape([-1, self.s.channels, side, side])
    }

    /// Sampling down the whole pyramid: the image, and every stage at full size for pictures
    /// (`[N, 2L − 1, C, H, W]`: Ĩ_0, h_1, Ĩ_1, ..., h_K, Ĩ_K, nearest-neighbour enlarged).
    pub fn sample(&self, latent: &Tensor) -> (Tensor, Tensor) {
        let (z, planes) = self.split(latent);
        let mut image = self.coarsest(&z);
        let mut stages = vec![image.shallow_clone()];
        for (g, plane) in self.finer.iter().zip(&planes) {
            let coarse = up(&image);
            let band = g.band(&coarse, plane);
            image = coarse + &band;
            stages.push(band);
            stages.push(image.shallow_clone());
        }
        let full = *self.s.sides.last().expect("a level");
        let enlarged: Vec<Tensor> = stages
            .iter()
            .map(|t| {
                let factor = full / t.size()[2];
                if factor == 1 {
                    t.shallow_clone()
                } else {
                    t.repeat_interleave_self_int(factor, 2, None).repeat_interleave_self_int(factor, 3, None)
                }
            })
            .collect();
        (image, Tensor::stack(&enlarged, 1))
    }

    /// Training, levels independent: G_0's image, then each finer level's image built on the
    /// *real* coarse image, l_k + G_k(l_k, plane_k) (eyescream trains every level on the data's
    /// own pyramid). `real` is the image at level k's side: levels 0..=k are drawn, so the
    /// coarsest side alone costs only G_0.
    pub fn on_real_pyramid(&self, latent: &Tensor, real: &Tensor) -> Vec<Tensor> {
        let (z, planes) = self.split(latent);
        let side = real.size()[2];
        let levels = self.s.sides.iter().position(|&s| s == side).expect("a level's side (checked by the caller)") + 1;
        let pyramid = real_pyramid(real, levels as i64);
        let mut out = vec![self.coarsest(&z)];
        for ((g, plane), below) in self.finer.iter().zip(&planes).take(levels - 1).zip(&pyramid) {
            let coarse = up(below);
            let band = g.band(&coarse, plane);
            out.push(coarse + band);
        }
        out
    }
}

/// One level's discriminator: the coarsest is fully connected (two hidden layers with dropout),
/// the finer ones 5×5 conv, ReLU, 5×5 stride-2 conv, ReLU, dropout, a linear logit. Each sees the
/// level's full image (eyescream adds the band-pass image to the coarse one before D).
#[derive(Debug)]
pub struct Discriminator {
    layers: Vec<nn::Linear>,
    convs: Vec<nn::Conv2D>,
    dropout: f64,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings, level: usize) -> Self {
        let (c, side) = (s.channels, s.sides[level]);
        if level == 0 {
            let h = s.d0_hidden;
            let layers =
                vec![linear(&p / "fc1", c * side * side, h), linear(&p / "fc2", h, h), linear(&p / "fc3", h, 1)];
            return Self { layers, convs: Vec::new(), dropout: s.d_dropout };
        }
        let h = s.d_channels;
        let convs = vec![conv(&p / "conv1", c, h, 5, 1), conv(&p / "conv2", h, h, 5, 2)];
        let half = (side + 1) / 2;
        Self { layers: vec![linear(&p / "fc", h * half * half, 1)], convs, dropout: s.d_dropout }
    }

    /// `(logits [N], the features the last layer reads)`.
    pub fn forward(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let features = if self.convs.is_empty() {
            let h = x.flatten(1, -1).apply(&self.layers[0]).relu().dropout(self.dropout, train);
            h.apply(&self.layers[1]).relu().dropout(self.dropout, train)
        } else {
            let h = self.convs.iter().fold(x.shallow_clone(), |h, c| h.apply(c).relu());
            h.dropout(self.dropout, train).flatten(1, -1)
        };
        let last = self.layers.last().expect("a logit layer");
        (features.apply(last).view([-1]), features)
    }
}

/// The mean of `x` as a float, kept on the device (for logged accuracies).
pub fn mean(x: &Tensor) -> Tensor {
    x.to_kind(Kind::Float).mean(Kind::Float)
}
