//! # {{name}}
//!
//! A fully connected GAN (Goodfellow et al., 2014, with LeakyReLU): the smallest architecture
//! that trains, as a starting point. Replace the two networks with yours; `lab` supplies the
//! data, optimizers, loss, EMA, checkpoints, logging and metrics.
//!
//! `lab_nn::gan` does the plumbing: it declares `generator` (stepped in phase G) and
//! `discriminator` (phase D) to the core, builds each in its own VarStore, and checks every
//! input's shape before the networks see it.
use lab_nn::prelude::*;

/// `[model.config]`: unknown keys are refused, missing ones take these defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Length of the latent vector z.
    pub z_dim: i64,
    /// Width of the hidden layers.
    pub hidden: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self { z_dim: 64, hidden: 256 }
    }
}

/// The config, checked and resolved against the data.
#[derive(Debug)]
pub struct {{Type}} {
    config: Config,
    shapes: Shapes,
}

impl GanModel for {{Type}} {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "{{description}}";
    type Config = Config;
    type G = nn::SequentialT;
    type D = Critic;

    fn resolve(config: Config, data: &DataSpec) -> Result<Self> {
        check::positive("z_dim", config.z_dim)?;
        check::positive("hidden", config.hidden)?;
        Ok(Self { shapes: Shapes::of(config.z_dim, data), config })
    }

    fn shapes(&self) -> Shapes {
        self.shapes
    }

    /// z → hidden → hidden → an image in [-1, 1] (flat; the adapter reshapes it).
    fn generator(&self, p: nn::Path) -> nn::SequentialT {
        let (z, h) = (self.config.z_dim, self.config.hidden);
        nn::seq_t()
            .add(nn::linear(&p / "fc1", z, h, Default::default()))
            .add(leaky_relu(0.2))
            .add(nn::linear(&p / "fc2", h, h, Default::default()))
            .add(leaky_relu(0.2))
            .add(nn::linear(&p / "out", h, self.shapes.pixels(), Default::default()))
            .add_fn(|x| x.tanh())
    }

    /// An image → hidden → hidden (the features) → one logit.
    fn discriminator(&self, p: nn::Path) -> Critic {
        let h = self.config.hidden;
        let body = nn::seq_t()
            .add_fn(|x| x.flatten(1, -1))
            .add(nn::linear(&p / "fc1", self.shapes.pixels(), h, Default::default()))
            .add(leaky_relu(0.2))
            .add(nn::linear(&p / "fc2", h, h, Default::default()))
            .add(leaky_relu(0.2));
        Critic::new(body, nn::linear(&p / "out", h, 1, Default::default()))
    }
}

/// The plugin `lab` loads: lab-nn's adapter around the model above.
pub type Architecture = Gan<{{Type}}>;

lab_plugin_api::export_plugins! { architecture: Architecture }

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_testkit::{architecture, FASHION_MNIST};

    #[test]
    fn networks_have_the_data_shape_gradients_and_seeded_weights() {
        let arch = architecture::create::<Architecture>("hidden = 32", FASHION_MNIST).unwrap();
        let report = arch.check_gan(4);
        // Weights and biases of z→32, 32→32 and 32→784 (28×28×1).
        assert_eq!(report.generator_parameters, (64 * 32 + 32) + (32 * 32 + 32) + (32 * 784 + 784));
        assert_eq!(report.discriminator_parameters, (784 * 32 + 32) + (32 * 32 + 32) + (32 + 1));
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_key() {
        let err = architecture::create::<Architecture>("hidden = 0", FASHION_MNIST).err().unwrap();
        assert_eq!(err.to_string(), "key `hidden`: expected a positive integer, found 0");
    }
}
