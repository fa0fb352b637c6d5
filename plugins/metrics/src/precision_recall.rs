//! `pr`: improved precision and recall (Kynkäänniemi et al., 2019). Each feature set's manifold
//! is the union of balls around its samples, each ball reaching the sample's k-th nearest
//! neighbour within its own set. Precision is the fraction of generated samples inside the real
//! manifold; recall the fraction of real samples inside the generated one.
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{BuildEnv, MetricPlugin, Value};
use serde_json::json;

use crate::config::{at_least, PrConfig};
use crate::features::FeatureNet;
use crate::RealAndFake;

/// Squared Euclidean distances between the rows of `a` (`[n, d]`) and `b` (`[m, d]`), float64.
fn squared_distances(a: &Tensor, b: &Tensor) -> Tensor {
    let aa = (a * a).sum_dim_intlist(1, true, Kind::Double);
    let bb = (b * b).sum_dim_intlist(1, false, Kind::Double).unsqueeze(0);
    (aa + bb - a.mm(&b.tr()) * 2.0).clamp_min(0.0)
}

/// The squared distance from each row of `x` to its k-th nearest other row, computing
/// `row_batch` rows of the distance matrix at a time. The row itself (distance 0) is the first
/// neighbour and is skipped, as in the paper.
pub fn knn_radii2(x: &Tensor, k: i64, row_batch: i64) -> Tensor {
    let parts: Vec<Tensor> =
        x.split(row_batch, 0).iter().map(|rows| squared_distances(rows, x).kthvalue(k + 1, 1, false).0).collect();
    Tensor::cat(&parts, 0)
}

/// The fraction of rows of `query` that lie within at least one ball (centre a row of
/// `centres`, squared radius from `radii2`, boundary included).
pub fn coverage(query: &Tensor, centres: &Tensor, radii2: &Tensor, row_batch: i64) -> f64 {
    let radii2 = radii2.unsqueeze(0);
    let inside: Vec<Tensor> = query
        .split(row_batch, 0)
        .iter()
        .map(|rows| squared_distances(rows, centres).le_tensor(&radii2).any_dim(1, false).sum(Kind::Int64))
        .collect();
    let hits = Tensor::stack(&inside, 0).sum(Kind::Int64).int64_value(&[]);
    hits as f64 / query.size()[0] as f64
}

/// Precision and recall of `fake` against `real` (`[N, D]` features) with k-NN radii.
pub fn precision_recall(real: &Tensor, fake: &Tensor, k: i64, row_batch: i64) -> lab_plugin_api::Result<(f64, f64)> {
    let (n_real, n_fake) = (real.size()[0], fake.size()[0]);
    if n_real <= k || n_fake <= k {
        return Err(lab_plugin_api::Error::new(format!(
            "pr needs more than k = {k} real and generated images (the k-th neighbour of each); got {n_real} and {n_fake}"
        )));
    }
    let real = real.to_kind(Kind::Double);
    let fake = fake.to_kind(Kind::Double).to_device(real.device());
    let precision = coverage(&fake, &real, &knn_radii2(&real, k, row_batch), row_batch);
    let recall = coverage(&real, &fake, &knn_radii2(&fake, k, row_batch), row_batch);
    Ok((precision, recall))
}

/// The `pr` metric: `precision` and `recall`, both in [0, 1], higher is better.
#[derive(Debug)]
pub struct PrecisionRecall {
    config: PrConfig,
    net: FeatureNet,
    features: RealAndFake,
}

impl PrecisionRecall {
    /// Stores a `[N, D]` batch of features on one side; what `update` does after the network.
    pub fn update_features(&mut self, features: &Tensor, fake: bool) -> lab_plugin_api::Result<()> {
        self.features.push(features, fake)
    }
}

impl MetricPlugin for PrecisionRecall {
    const NAME: &'static str = "pr";
    const DESCRIPTION: &'static str =
        "Improved precision and recall (Kynkäänniemi et al., 2019): k-NN manifolds of real and generated features";
    type Config = PrConfig;

    fn create(config: PrConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        at_least("k", config.k, 1)?;
        at_least("row_batch", config.row_batch, 1)?;
        let net = FeatureNet::load(&config.network, env.device())?;
        Ok(Self { config, net, features: RealAndFake::default() })
    }

    fn reset(&mut self) -> lab_plugin_api::Result<()> {
        self.features.clear();
        Ok(())
    }

    fn update(&mut self, images: &Tensor, fake: bool) -> lab_plugin_api::Result<()> {
        let features = self.net.run(images, &self.config.feature_args)?;
        self.update_features(&features, fake)
    }

    fn compute(&mut self) -> lab_plugin_api::Result<Vec<Value>> {
        let (precision, recall) = precision_recall(
            &self.features.real.all(),
            &self.features.fake.all(),
            self.config.k,
            self.config.row_batch,
        )?;
        Ok(vec![
            Value { name: "precision".into(), value: precision, higher_is_better: true },
            Value { name: "recall".into(), value: recall, higher_is_better: true },
        ])
    }

    fn protocol(&self) -> String {
        json!({
            "metric": "pr",
            "features": self.net.protocol(&self.config.feature_args),
            "real_count": self.features.real.count(),
            "generated_count": self.features.fake.count(),
            "k": self.config.k,
            "distance": "Euclidean, float64; a point on a ball's boundary counts as inside",
        })
        .to_string()
    }
}
