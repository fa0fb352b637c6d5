//! The `[loss.config]` tables of the loss plugins, and the penalty weights they resolve to.
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The config of `non-saturating`, `minimax`, `hinge` and `least-squares`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// R1 weight γ: adds γ/2·‖∇ₓD(x)‖² on real data to the D loss (Mescheder et al., 2018). 0 = off.
    pub r1_gamma: f64,
    /// Consistency-regularisation weight λ: adds λ·(D(T(x)) − D(x))² on real data
    /// (Zhang et al., 2020). 0 = off.
    pub cr_lambda: f64,
    /// CR's T: false (default) is CR's own flip + ±4 px reflection-padded shift, so CR works
    /// without a run augmentation (CR-BigGAN); true uses the run's augmentation instead.
    pub cr_run_augment: bool,
    /// Step D and G together from one forward pass (phase `DG`), as the original GAN's code
    /// does (pylearn2's simultaneous SGD step), instead of `D` × `train.d_steps` then `G`.
    pub simultaneous: bool,
}

/// The config of `wgan-gp`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WganGpConfig {
    /// Gradient-penalty weight λ: adds λ·(‖∇D(x̂)‖ − 1)² on real/fake interpolates
    /// (Gulrajani et al., 2017). 0 turns WGAN-GP into a plain (unconstrained) WGAN loss.
    pub gp_lambda: f64,
    /// As in [`LossConfig::r1_gamma`].
    pub r1_gamma: f64,
    /// As in [`LossConfig::cr_lambda`].
    pub cr_lambda: f64,
    /// As in [`LossConfig::cr_run_augment`].
    pub cr_run_augment: bool,
}

impl Default for WganGpConfig {
    fn default() -> Self {
        Self { gp_lambda: 10.0, r1_gamma: 0.0, cr_lambda: 0.0, cr_run_augment: false }
    }
}

/// The weights of the regularisers added to the D loss; 0 means off.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Penalties {
    pub gp_lambda: f64,
    pub r1_gamma: f64,
    pub cr_lambda: f64,
    pub cr_run_augment: bool,
}

/// A loss config: parsed by the API from TOML, then reduced to its penalty weights.
pub trait PenaltyConfig: Serialize + DeserializeOwned + Default + Send + 'static {
    fn penalties(&self) -> Penalties;
    /// Whether D and G step together from one forward pass.
    fn simultaneous(&self) -> bool {
        false
    }
}

impl PenaltyConfig for LossConfig {
    fn penalties(&self) -> Penalties {
        Penalties {
            gp_lambda: 0.0,
            r1_gamma: self.r1_gamma,
            cr_lambda: self.cr_lambda,
            cr_run_augment: self.cr_run_augment,
        }
    }
    fn simultaneous(&self) -> bool {
        self.simultaneous
    }
}

impl PenaltyConfig for WganGpConfig {
    fn penalties(&self) -> Penalties {
        Penalties {
            gp_lambda: self.gp_lambda,
            r1_gamma: self.r1_gamma,
            cr_lambda: self.cr_lambda,
            cr_run_augment: self.cr_run_augment,
        }
    }
}

impl Penalties {
    /// Every weight must be a finite, non-negative number: a negative one would reward D for
    /// the very behaviour the penalty exists to prevent.
    pub fn validate(&self) -> lab_plugin_api::Result<()> {
        for (key, value) in [("gp_lambda", self.gp_lambda), ("r1_gamma", self.r1_gamma), ("cr_lambda", self.cr_lambda)]
        {
            lab_plugin_api::config::check::non_negative(key, value, "0 turns it off")?;
        }
        Ok(())
    }
}
