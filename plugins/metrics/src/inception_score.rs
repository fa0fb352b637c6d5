//! `is`: the Inception score exp(E_x KL(p(y|x) ‖ p(y))) of the generated images, over
//! consecutive splits, as Salimans et al. (2016) and stylegan2-ada-pytorch compute it.
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{BuildEnv, MetricPlugin, Value};
use serde_json::json;

use crate::config::{at_least, IsConfig};
use crate::features::FeatureNet;
use crate::{check_features, FeatureStore};

/// How far a row of class probabilities may sum from 1 before the output is refused.
const SUM_TOLERANCE: f64 = 1e-3;

/// The Inception score's mean and (population) standard deviation over `splits` consecutive
/// splits of `[N, C]` class probabilities; split i holds rows `i·N/splits .. (i+1)·N/splits`.
/// Terms with p = 0 count as 0 (the limit of p·log p).
pub fn inception_score(probs: &Tensor, splits: i64) -> lab_plugin_api::Result<(f64, f64)> {
    let n = probs.size()[0];
    if n < splits {
        return Err(lab_plugin_api::Error::new(format!(
            "is needs at least as many generated images as splits ({splits}); got {n}"
        )));
    }
    let p = probs.to_kind(Kind::Double);
    let sums = p.sum_dim_intlist(1, false, Kind::Double);
    let (lo, hi) = (sums.min().double_value(&[]), sums.max().double_value(&[]));
    let negative = p.min().double_value(&[]) < 0.0;
    if negative || (lo - 1.0).abs() > SUM_TOLERANCE || (hi - 1.0).abs() > SUM_TOLERANCE {
        return Err(lab_plugin_api::Error::new(format!(
            "is: the network's class outputs are not probabilities (row sums {lo:.4}..{hi:.4}{}); \
             set `softmax = true` if it returns logits, or check `probs_args`",
            if negative { ", negative entries" } else { "" }
        )));
    }
    let scores: Vec<Tensor> = (0..splits)
        .map(|i| {
            let (start, end) = (i * n / splits, (i + 1) * n / splits);
            let part = p.narrow(0, start, end - start);
            let marginal = part.mean_dim(0, true, Kind::Double);
            let kl = (part.xlogy(&part) - part.xlogy(&marginal)).sum_dim_intlist(1, false, Kind::Double);
            kl.mean(Kind::Double).exp()
        })
        .collect();
    let scores = Tensor::stack(&scores, 0);
    Ok((scores.mean(Kind::Double).double_value(&[]), scores.std(false).double_value(&[])))
}

/// The `is` metric: only generated images count; real batches are ignored (and counted in the
/// protocol). Higher is better.
#[derive(Debug)]
pub struct InceptionScore {
    config: IsConfig,
    net: FeatureNet,
    probs: FeatureStore,
    real_ignored: i64,
}

impl InceptionScore {
    /// Stores a `[N, C]` batch of class probabilities (or logits with `softmax = true`) of
    /// generated images; what `update` does after the network.
    pub fn update_probabilities(&mut self, outputs: &Tensor) -> lab_plugin_api::Result<()> {
        check_features(outputs)?;
        if self.config.softmax {
            self.probs.push(&outputs.softmax(1, Kind::Double))
        } else {
            self.probs.push(outputs)
        }
    }
}

impl MetricPlugin for InceptionScore {
    const NAME: &'static str = "is";
    const DESCRIPTION: &'static str =
        "Inception score (Salimans et al., 2016): mean and std over splits of generated images";
    type Config = IsConfig;

    fn create(config: IsConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        at_least("splits", config.splits, 1)?;
        let net = FeatureNet::load(&config.network, env.device())?;
        Ok(Self { config, net, probs: FeatureStore::default(), real_ignored: 0 })
    }

    fn reset(&mut self) -> lab_plugin_api::Result<()> {
        self.probs = FeatureStore::default();
        self.real_ignored = 0;
        Ok(())
    }

    fn update(&mut self, images: &Tensor, fake: bool) -> lab_plugin_api::Result<()> {
        if !fake {
            self.real_ignored += images.size().first().copied().unwrap_or(0);
            return Ok(());
        }
        let outputs = self.net.run(images, &self.config.probs_args)?;
        self.update_probabilities(&outputs)
    }

    fn compute(&mut self) -> lab_plugin_api::Result<Vec<Value>> {
        let (mean, std) = inception_score(&self.probs.all(), self.config.splits)?;
        Ok(vec![
            Value { name: "is".into(), value: mean, higher_is_better: true },
            Value { name: "is_std".into(), value: std, higher_is_better: false },
        ])
    }

    fn protocol(&self) -> String {
        json!({
            "metric": "is",
            "features": self.net.protocol(&self.config.probs_args),
            "outputs": if self.config.softmax { "logits, softmax applied in float64" } else { "probabilities" },
            "generated_count": self.probs.count(),
            "classes": self.probs.dim(),
            "splits": self.config.splits,
            "split_rule": "consecutive: split i holds samples i*N/splits .. (i+1)*N/splits in update order",
            "std": "population (numpy.std)",
            "real_images_ignored": self.real_ignored,
        })
        .to_string()
    }
}
