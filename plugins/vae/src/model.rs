//! `vae`: the MLP encoder and Bernoulli decoder of AEVB. The defaults are the common reference
//! implementation (PyTorch's `examples/vae`, also tch-rs's `examples/vae`): 784 → 400 ReLU →
//! (μ, log σ²) of 20, and 20 → 400 ReLU → 784 sigmoid, PyTorch's default `nn.Linear`
//! initialisation. `activation = "tanh"`, `hidden = 500` and `init = "normal"` give the paper's
//! MNIST model (Kingma & Welling 2013, App. C: 500 tanh units, parameters from N(0, 0.01)).
//!
//! The decoder is the run's `generator`: its first output is the image `2·p − 1` in [-1, 1]
//! (p the Bernoulli means), its second the logits the ELBO needs.
use lab_nn::prelude::*;
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_TRAIN};
use lab_plugin_api::{
    ArchitecturePlugin, BuildEnv, EvalCtx, Network, Spec, Value, VarStoreNetwork, VisualCtx, PHASE_G,
};

use crate::elbo::{reparameterise, to_target, ElboTerms};

/// `[model.config]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeConfig {
    /// Latent dimensions (the paper studies 3, 5, 10, 20 and 200).
    pub z_dim: i64,
    /// Width of the one hidden layer of the encoder and of the decoder.
    pub hidden: i64,
    /// `relu` (the reference implementation) or `tanh` (the paper).
    pub activation: String,
    /// `pytorch`: nn.Linear's default, U(±1/√fan_in) for weights and biases; `normal`: every
    /// parameter from N(0, 0.01²) as in the paper.
    pub init: String,
    /// Images per batch when the model measures its ELBO.
    pub eval_batch: i64,
    /// How many images of each split the ELBO is measured on; 0: the whole evaluation split and
    /// as many training images.
    pub eval_count: i64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            z_dim: 20,
            hidden: 400,
            activation: "relu".into(),
            init: "pytorch".into(),
            eval_batch: 500,
            eval_count: 0,
        }
    }
}

/// The `vae` architecture plugin.
pub struct Vae {
    config: VaeConfig,
    env: BuildEnv,
}

impl Vae {
    fn pixels(&self) -> i64 {
        let d = self.env.data;
        d.channels * d.height * d.width
    }

    fn linear(&self, p: &nn::Path, name: &str, input: i64, output: i64) -> nn::Linear {
        let init = match self.config.init.as_str() {
            "normal" => nn::Init::Randn { mean: 0.0, stdev: 0.01 },
            _ => {
                let bound = 1.0 / (input as f64).sqrt();
                nn::Init::Uniform { lo: -bound, up: bound }
            }
        };
        nn::linear(p / name, input, output, nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true })
    }

    /// μ and log σ² of q(z|x) for images in [-1, 1].
    fn encode(ctx: &EvalCtx<'_>, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut out = ctx.run_network("encoder", &[x.shallow_clone()])?;
        let logvar = out.remove(1);
        Ok((out.remove(0), logvar))
    }

    /// The mean negative ELBO terms over the first `limit` images of `split`, one z per image.
    fn measure(&self, ctx: &EvalCtx<'_>, split: &str, limit: i64) -> Result<(f64, f64, i64)> {
        let (mut reconstruction, mut kl, mut n) = (0.0, 0.0, 0i64);
        ctx.for_each_batch(split, self.config.eval_batch, limit, |x, _| {
            let (mu, logvar) = Self::encode(ctx, &x)?;
            let z = reparameterise(&mu, &logvar);
            let logits = ctx.run_network("generator", &[z])?.remove(1);
            let terms = ElboTerms::of(&mu, &logvar, &logits, &to_target(&x));
            reconstruction += terms.reconstruction.sum(Kind::Double).double_value(&[]);
            kl += terms.kl.sum(Kind::Double).double_value(&[]);
            n += x.size()[0];
            Ok(())
        })?;
        let n_f = n.max(1) as f64;
        Ok((reconstruction / n_f, kl / n_f, n))
    }
}

impl ArchitecturePlugin for Vae {
    const NAME: &'static str = "vae";
    const DESCRIPTION: &'static str =
        "Variational auto-encoder, MLP encoder and Bernoulli decoder (Kingma & Welling 2013)";
    type Config = VaeConfig;

    fn create(config: VaeConfig, env: BuildEnv) -> Result<Self> {
        check::positive("z_dim", config.z_dim)?;
        check::positive("hidden", config.hidden)?;
        check::one_of("activation", &config.activation, &["relu", "tanh"])?;
        check::one_of("init", &config.init, &["pytorch", "normal"])?;
        check::positive("eval_batch", config.eval_batch)?;
        check::at_least("eval_count", config.eval_count, 0)?;
        Ok(Self { config, env })
    }

    fn z_dim(&self) -> i64 {
        self.config.z_dim
    }

    fn networks(&self) -> Vec<Spec> {
        // One phase trains both: there is no discriminator.
        vec![Spec::new("encoder", &[PHASE_G]), Spec::new("generator", &[PHASE_G])]
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>> {
        let vs = nn::VarStore::new(self.env.device());
        let root = vs.root();
        let (pixels, hidden, z) = (self.pixels(), self.config.hidden, self.config.z_dim);
        let tanh = self.config.activation == "tanh";
        let act = move |x: Tensor| if tanh { x.tanh() } else { x.relu() };
        match name {
            "encoder" => {
                let fc1 = self.linear(&root, "fc1", pixels, hidden);
                let mu = self.linear(&root, "fc_mu", hidden, z);
                let logvar = self.linear(&root, "fc_logvar", hidden, z);
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |inputs: &[Tensor], _train: bool| {
                        let h = act(inputs[0].flatten(1, -1).apply(&fc1));
                        Ok(vec![h.apply(&mu), h.apply(&logvar)])
                    },
                }))
            }
            "generator" => {
                let fc1 = self.linear(&root, "fc1", z, hidden);
                let out = self.linear(&root, "out", hidden, pixels);
                let d = self.env.data;
                let shape = [-1, d.channels, d.height, d.width];
                Ok(Box::new(VarStoreNetwork {
                    vs,
                    forward: move |inputs: &[Tensor], _train: bool| {
                        let logits = act(inputs[0].apply(&fc1)).apply(&out);
                        let image = logits.sigmoid() * 2.0 - 1.0;
                        Ok(vec![image.reshape(shape), logits])
                    },
                }))
            }
            other => {
                Err(lab_plugin_api::Error::new(format!("`vae` has networks `encoder` and `generator`, not `{other}`")))
            }
        }
    }

    /// Rows of real images over their reconstructions (the decoder at μ), then prior samples.
    fn visualize(&self, ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        lab_nn::grid::reconstructions(ctx).map(Some)
    }

    fn measures(&self) -> Vec<String> {
        ["elbo", "elbo_train", "kl", "reconstruction"].map(String::from).to_vec()
    }

    /// The ELBO in nats per image (one z per image): on the evaluation split (`elbo`, with its
    /// two terms) and on as many training images (`elbo_train`), so over-fitting shows.
    fn evaluate(&self, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
        let limit = if self.config.eval_count > 0 { self.config.eval_count } else { ctx.count(SPLIT_REFERENCE)? };
        let (reconstruction, kl, n) = self.measure(ctx, SPLIT_REFERENCE, limit)?;
        let (train_reconstruction, train_kl, _) = self.measure(ctx, SPLIT_TRAIN, n)?;
        Ok(vec![
            Value::higher("elbo", -(reconstruction + kl)),
            Value::higher("elbo_train", -(train_reconstruction + train_kl)),
            Value::lower("kl", kl),
            Value::lower("reconstruction", reconstruction),
        ])
    }
}
