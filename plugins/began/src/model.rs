//! `began`: the networks of carpedm20/BEGAN-tensorflow `models.py`, sized by the image side.
//! - D encoder: 3×3 conv n, ELU → `repeat` blocks of two 3×3 convs of n·(i+1) channels (ELU),
//!   all but the last followed by a stride-2 3×3 conv (ELU) → FC to h (no activation).
//! - D decoder and G (same architecture, separate weights): FC to n·b·b (no activation) →
//!   `repeat` blocks of two 3×3 convs of n channels (ELU), all but the last followed by a
//!   nearest-neighbour ×2 upsampling → 3×3 conv to the image's channels (no activation).
//!
//! b is the bottleneck side: 8 for 32 and 64 px (the code's), 7 for 28 px; `repeat` is
//! log2(side / b) + 1. Weights are Glorot-uniform and biases 0 (slim's defaults). z is
//! U(−1, 1) of `z_dim` (the paper's N_z = N_h = 64).
use lab_nn::prelude::*;
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Error, Network, Spec, VarStoreNetwork};

/// `[model.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeganNetworksConfig {
    /// n: the convolutions' base width (the paper: 64 or 128).
    pub channels: i64,
    /// N_z: z's length.
    pub z_dim: i64,
    /// N_h: the discriminator's embedding.
    pub hidden: i64,
}

impl Default for BeganNetworksConfig {
    fn default() -> Self {
        Self { channels: 64, z_dim: 64, hidden: 64 }
    }
}

/// The `began` architecture plugin.
pub struct BeganNetworks {
    config: BeganNetworksConfig,
    env: BuildEnv,
    /// Bottleneck side and number of blocks.
    bottleneck: i64,
    repeat: i64,
}

fn glorot(fan_in: i64, fan_out: i64) -> nn::Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

fn conv(p: &nn::Path, name: &str, input: i64, output: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: 1,
        ws_init: glorot(input * 9, output * 9),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p / name, input, output, 3, config)
}

fn linear(p: &nn::Path, name: &str, input: i64, output: i64) -> nn::Linear {
    nn::linear(
        p / name,
        input,
        output,
        nn::LinearConfig { ws_init: glorot(input, output), bs_init: Some(nn::Init::Const(0.0)), bias: true },
    )
}

impl BeganNetworks {
    /// FC to n·b·b, then the blocks of convolutions and upsamplings, then the output conv.
    fn decoder(&self, p: &nn::Path, input: i64) -> nn::Sequential {
        let (n, b, c) = (self.config.channels, self.bottleneck, self.env.data.channels);
        let mut seq = nn::seq().add(linear(p, "fc", input, n * b * b)).add_fn(move |x| x.reshape([-1, n, b, b]));
        for i in 0..self.repeat {
            seq = seq
                .add(conv(p, &format!("block{i}_conv1"), n, n, 1))
                .add_fn(|x| x.elu())
                .add(conv(p, &format!("block{i}_conv2"), n, n, 1))
                .add_fn(|x| x.elu());
            if i < self.repeat - 1 {
                seq = seq.add_fn(|x| {
                    let s = x.size();
                    x.upsample_nearest2d([s[2] * 2, s[3] * 2], None, None)
                });
            }
        }
        seq.add(conv(p, "out", n, c, 1))
    }

    fn encoder(&self, p: &nn::Path) -> nn::Sequential {
        let (n, b, c) = (self.config.channels, self.bottleneck, self.env.data.channels);
        let mut seq = nn::seq().add(conv(p, "in", c, n, 1)).add_fn(|x| x.elu());
        let mut width = n;
        for i in 0..self.repeat {
            let w = n * (i + 1);
            seq = seq
                .add(conv(p, &format!("block{i}_conv1"), width, w, 1))
                .add_fn(|x| x.elu())
                .add(conv(p, &format!("block{i}_conv2"), w, w, 1))
                .add_fn(|x| x.elu());
            if i < self.repeat - 1 {
                seq = seq.add(conv(p, &format!("block{i}_down"), w, w, 2)).add_fn(|x| x.elu());
            }
            width = w;
        }
        seq.add_fn(|x| x.flatten(1, -1)).add(linear(p, "fc", width * b * b, self.config.hidden))
    }
}

impl ArchitecturePlugin for BeganNetworks {
    const NAME: &'static str = "began";
    const DESCRIPTION: &'static str =
        "BEGAN's auto-encoder discriminator and decoder-shaped generator (Berthelot et al. 2017)";
    type Config = BeganNetworksConfig;

    fn create(config: BeganNetworksConfig, env: BuildEnv) -> Result<Self> {
        check::positive("channels", config.channels)?;
        check::positive("z_dim", config.z_dim)?;
        check::positive("hidden", config.hidden)?;
        let d = env.data;
        let (bottleneck, repeat) = match (d.height, d.width) {
            (28, 28) => (7, 3),
            (32, 32) => (8, 3),
            (64, 64) => (8, 4),
            (128, 128) => (8, 5),
            (h, w) => {
                return Err(Error::new(format!(
                    "`began` is sized for square 28, 32, 64 or 128 px images; the data are {h}×{w}"
                )))
            }
        };
        Ok(Self { config, env, bottleneck, repeat })
    }

    fn z_dim(&self) -> i64 {
        self.config.z_dim
    }

    fn networks(&self) -> Vec<Spec> {
        lab_nn::gan::networks()
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let root = vs.root();
        match name {
            "generator" => {
                let g = self.decoder(&root, self.config.z_dim);
                Ok(Box::new(VarStoreNetwork { vs, forward: move |i: &[Tensor], _| Ok(vec![i[0].apply(&g)]) }))
            }
            "discriminator" => {
                let encoder = self.encoder(&(&root / "encoder"));
                let decoder = self.decoder(&(&root / "decoder"), self.config.hidden);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], _| {
                        let h = i[0].apply(&encoder);
                        Ok(vec![h.apply(&decoder), h])
                    },
                }))
            }
            other => Err(Error::new(format!("`began` has networks `generator` and `discriminator`, not `{other}`"))),
        }
    }

    /// z ~ U(−1, 1).
    fn sample_latent(&self, n: i64) -> Result<Option<Tensor>> {
        Ok(Some(Tensor::rand([n, self.config.z_dim], (Kind::Float, self.env.device())) * 2.0 - 1.0))
    }
}
