//! `kid`: the kernel Inception distance, an unbiased estimate of the squared MMD between real
//! and generated features under the cubic polynomial kernel k(x, y) = (xᵀy/d + 1)³, averaged
//! over random subsets drawn with the metric's own seeded generator.
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{BuildEnv, MetricPlugin, Value};
use serde_json::json;

use crate::config::{at_least, KidConfig};
use crate::features::FeatureNet;
use crate::rng::SplitMix64;
use crate::RealAndFake;

/// The unbiased MMD² between two equally sized float64 samples `x`, `y` (`[m, d]`), as a
/// 0-d tensor: the kernel means within each side leave out the diagonal (i = j).
pub fn mmd2_unbiased(x: &Tensor, y: &Tensor) -> Tensor {
    let (m, d) = (x.size()[0] as f64, x.size()[1] as f64);
    let kernel = |a: &Tensor, b: &Tensor| (a.mm(&b.tr()) / d + 1.0).pow_tensor_scalar(3);
    let (kxx, kyy, kxy) = (kernel(x, x), kernel(y, y), kernel(x, y));
    let within = (kxx.sum(Kind::Double) - kxx.trace() + kyy.sum(Kind::Double) - kyy.trace()) / (m * (m - 1.0));
    within - kxy.sum(Kind::Double) * (2.0 / (m * m))
}

/// The index subsets KID uses: for each of `count` subsets, `m` distinct real indices then `m`
/// distinct fake indices, all from one [`SplitMix64`] seeded with `seed`.
pub fn draw_subsets(seed: u64, n_real: usize, n_fake: usize, m: usize, count: usize) -> Vec<(Vec<i64>, Vec<i64>)> {
    let mut rng = SplitMix64::new(seed);
    (0..count).map(|_| (rng.choose(n_real, m), rng.choose(n_fake, m))).collect()
}

/// KID's mean and (population) standard deviation over `subsets` subsets of `subset_size`
/// samples per side (clamped to the smaller side), from `[N, D]` feature tensors.
pub fn kernel_inception_distance(
    real: &Tensor,
    fake: &Tensor,
    subsets: i64,
    subset_size: i64,
    seed: u64,
) -> lab_plugin_api::Result<(f64, f64)> {
    let (n_real, n_fake) = (real.size()[0], fake.size()[0]);
    let m = subset_size.min(n_real).min(n_fake);
    if m < 2 {
        return Err(lab_plugin_api::Error::new(format!(
            "kid needs at least 2 real and 2 generated images; got {n_real} and {n_fake}"
        )));
    }
    let device = real.device();
    let (real, fake) = (real.to_kind(Kind::Double), fake.to_kind(Kind::Double).to_device(device));
    let values: Vec<Tensor> = draw_subsets(seed, n_real as usize, n_fake as usize, m as usize, subsets as usize)
        .into_iter()
        .map(|(r, f)| {
            let pick = |x: &Tensor, idx: Vec<i64>| x.index_select(0, &Tensor::from_slice(&idx).to_device(device));
            mmd2_unbiased(&pick(&real, r), &pick(&fake, f))
        })
        .collect();
    let values = Tensor::stack(&values, 0);
    let mean = values.mean(Kind::Double).double_value(&[]);
    let std = values.std(false).double_value(&[]);
    Ok((mean, std))
}

/// The `kid` metric. Lower is better; its expectation is 0 for identical distributions (an
/// unbiased estimate can be slightly negative).
#[derive(Debug)]
pub struct Kid {
    config: KidConfig,
    net: FeatureNet,
    features: RealAndFake,
}

impl Kid {
    /// Stores a `[N, D]` batch of features on one side; what `update` does after the network.
    pub fn update_features(&mut self, features: &Tensor, fake: bool) -> lab_plugin_api::Result<()> {
        self.features.push(features, fake)
    }

    fn effective_subset_size(&self) -> i64 {
        self.config.subset_size.min(self.features.real.count()).min(self.features.fake.count())
    }
}

impl MetricPlugin for Kid {
    const NAME: &'static str = "kid";
    const DESCRIPTION: &'static str =
        "Kernel Inception distance (Bińkowski et al., 2018): unbiased MMD² with a cubic kernel over random subsets";
    type Config = KidConfig;

    fn create(config: KidConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        at_least("subsets", config.subsets, 1)?;
        at_least("subset_size", config.subset_size, 2)?;
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
        let (real, fake) = (self.features.real.all(), self.features.fake.all());
        let (mean, std) =
            kernel_inception_distance(&real, &fake, self.config.subsets, self.config.subset_size, self.config.seed)?;
        Ok(vec![
            Value { name: "kid".into(), value: mean, higher_is_better: false },
            Value { name: "kid_std".into(), value: std, higher_is_better: false },
        ])
    }

    fn protocol(&self) -> String {
        json!({
            "metric": "kid",
            "features": self.net.protocol(&self.config.feature_args),
            "real_count": self.features.real.count(),
            "generated_count": self.features.fake.count(),
            "kernel": "k(x, y) = (x.y / d + 1)^3",
            "estimator": "unbiased MMD^2, mean and population std over subsets",
            "subsets": self.config.subsets,
            "subset_size": self.effective_subset_size(),
            "subset_size_requested": self.config.subset_size,
            "seed": self.config.seed,
            "subset_rng": "SplitMix64: per subset, real indices then generated indices, partial Fisher-Yates",
        })
        .to_string()
    }
}
