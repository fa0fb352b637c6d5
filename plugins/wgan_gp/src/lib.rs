//! # lab-plugin-wgan-gp
//!
//! `wgan-gp-mnist`: the generator and critic of WGAN-GP's MNIST experiment (Gulrajani et al.
//! 2017; igul222/improved_wgan_training `gan_mnist.py`, DIM = 64), for 28×28 images. The
//! objective is the `wgan-gp` loss of `lab-plugin-losses`.
//! - G: z (128, N(0, I)) → FC 4·4·4·DIM, ReLU → deconv 5×5/2 to 2·DIM, ReLU → crop 8×8 to 7×7
//!   → deconv 5×5/2 to DIM, ReLU → deconv 5×5/2 to 1, sigmoid (here `2σ − 1`, the core's
//!   [-1, 1] images). No batch norm (the file keeps it for its WGAN mode only).
//! - D: conv 5×5/2 DIM, lReLU 0.2 → conv 5×5/2 2·DIM, lReLU → conv 5×5/2 4·DIM, lReLU → linear
//!   from 4·4·4·DIM to 1. No normalisation: the gradient penalty is per sample.
//!
//! Every layer has a bias; weights use tflib's He-uniform rule (σ = √(4 / (fan_in + fan_out)),
//! with the stride folded into the fans as tflib does), biases 0.
use lab_nn::prelude::*;
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Error, Network, Spec, VarStoreNetwork};

/// `[model.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WganGpMnistConfig {
    /// DIM: the base width.
    pub dim: i64,
    /// z's length.
    pub z_dim: i64,
}

impl Default for WganGpMnistConfig {
    fn default() -> Self {
        Self { dim: 64, z_dim: 128 }
    }
}

/// The `wgan-gp-mnist` architecture plugin.
pub struct WganGpMnist {
    config: WganGpMnistConfig,
    env: BuildEnv,
}

/// tflib's He-uniform weights: U(±√3·σ), σ = √(4 / (fan_in + fan_out)).
fn he_uniform(fan_in: f64, fan_out: f64) -> nn::Init {
    let bound = 3f64.sqrt() * (4.0 / (fan_in + fan_out)).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

fn conv(p: &nn::Path, name: &str, input: i64, output: i64) -> nn::Conv2D {
    // A stride-2 convolution: tflib divides fan_out by stride².
    let init = he_uniform((input * 25) as f64, (output * 25) as f64 / 4.0);
    nn::conv2d(
        p / name,
        input,
        output,
        5,
        nn::ConvConfig { stride: 2, padding: 2, ws_init: init, bs_init: nn::Init::Const(0.0), ..Default::default() },
    )
}

fn deconv(p: &nn::Path, name: &str, input: i64, output: i64) -> nn::ConvTranspose2D {
    // tflib's Deconv2D doubles the side ('SAME'); it divides fan_in by stride².
    let init = he_uniform((input * 25) as f64 / 4.0, (output * 25) as f64);
    let config = nn::ConvTransposeConfig {
        stride: 2,
        padding: 2,
        output_padding: 1,
        ws_init: init,
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv_transpose2d(p / name, input, output, 5, config)
}

fn linear(p: &nn::Path, name: &str, input: i64, output: i64) -> nn::Linear {
    nn::linear(
        p / name,
        input,
        output,
        nn::LinearConfig {
            ws_init: he_uniform(input as f64, output as f64),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    )
}

impl ArchitecturePlugin for WganGpMnist {
    const NAME: &'static str = "wgan-gp-mnist";
    const DESCRIPTION: &'static str = "WGAN-GP's MNIST generator and critic (Gulrajani et al. 2017, gan_mnist.py)";
    type Config = WganGpMnistConfig;

    fn create(config: WganGpMnistConfig, env: BuildEnv) -> Result<Self> {
        check::positive("dim", config.dim)?;
        check::positive("z_dim", config.z_dim)?;
        let d = env.data;
        if (d.height, d.width) != (28, 28) {
            return Err(Error::new(format!(
                "`wgan-gp-mnist` is MNIST's 28×28 networks; the data are {}×{}",
                d.height, d.width
            )));
        }
        Ok(Self { config, env })
    }

    fn z_dim(&self) -> i64 {
        self.config.z_dim
    }

    fn networks(&self) -> Vec<Spec> {
        lab_nn::gan::networks()
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let p = vs.root();
        let (dim, c) = (self.config.dim, self.env.data.channels);
        match name {
            "generator" => {
                let g = nn::seq()
                    .add(linear(&p, "fc", self.config.z_dim, 4 * 4 * 4 * dim))
                    .add_fn(move |x| x.relu().reshape([-1, 4 * dim, 4, 4]))
                    .add(deconv(&p, "up1", 4 * dim, 2 * dim))
                    .add_fn(|x| x.relu().narrow(2, 0, 7).narrow(3, 0, 7))
                    .add(deconv(&p, "up2", 2 * dim, dim))
                    .add_fn(|x| x.relu())
                    .add(deconv(&p, "up3", dim, c))
                    .add_fn(|x| x.sigmoid() * 2.0 - 1.0);
                Ok(Box::new(VarStoreNetwork { vs, forward: move |i: &[Tensor], _| Ok(vec![i[0].apply(&g)]) }))
            }
            "discriminator" => {
                let body = nn::seq()
                    .add(conv(&p, "conv1", c, dim))
                    .add(leaky_relu(0.2))
                    .add(conv(&p, "conv2", dim, 2 * dim))
                    .add(leaky_relu(0.2))
                    .add(conv(&p, "conv3", 2 * dim, 4 * dim))
                    .add(leaky_relu(0.2))
                    .add_fn(|x| x.flatten(1, -1));
                let head = linear(&p, "out", 4 * 4 * 4 * dim, 1);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |i: &[Tensor], _| {
                        let features = i[0].apply(&body);
                        Ok(vec![features.apply(&head).view([-1]), features])
                    },
                }))
            }
            other => {
                Err(Error::new(format!("`wgan-gp-mnist` has networks `generator` and `discriminator`, not `{other}`")))
            }
        }
    }
}

lab_plugin_api::export_plugins! { architecture: WganGpMnist }

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_testkit::{architecture, FASHION_MNIST};

    #[test]
    fn the_networks_have_gan_mnist_pys_sizes_and_pass_the_gan_checks() {
        let arch = architecture::create::<WganGpMnist>("", FASHION_MNIST).unwrap();
        let report = arch.check_gan(4);
        let (dim, z) = (64, 128);
        let g = (z * 4 * 4 * 4 * dim + 4 * 4 * 4 * dim)
            + (4 * dim * 2 * dim * 25 + 2 * dim)
            + (2 * dim * dim * 25 + dim)
            + (dim * 25 + 1);
        let d = (25 * dim + dim)
            + (dim * 2 * dim * 25 + 2 * dim)
            + (2 * dim * 4 * dim * 25 + 4 * dim)
            + (4 * 4 * 4 * dim + 1);
        assert_eq!((report.generator_parameters, report.discriminator_parameters), (g, d));
        let err = architecture::create::<WganGpMnist>("", lab_plugin_testkit::CIFAR10).err().unwrap();
        assert_eq!(err.to_string(), "`wgan-gp-mnist` is MNIST's 28×28 networks; the data are 32×32");
    }
}
