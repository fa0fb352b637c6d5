//! Gaussian statistics of features: streaming moments on the device in float64, the Fréchet
//! distance between two Gaussians, and the reference-statistics files the core caches.
//!
//! A statistics file is safetensors with four tensors: `mu` (f64 `[D]`), `sigma` (f64 `[D, D]`,
//! the unbiased covariance), `count` (i64 `[1]`, samples behind them) and `features_sha256` (u8
//! `[64]`, the hex SHA-256 of the feature network), so a file is never used with another network.
use std::path::Path;

use lab_plugin_api::tch::{Device, Kind, Tensor};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::features::{hex, shape};

/// Streaming sums Σx and Σxxᵀ of feature vectors, in float64 on the features' device.
#[derive(Debug, Default)]
pub struct Moments {
    count: i64,
    sum: Option<Tensor>,
    outer: Option<Tensor>,
}

impl Moments {
    /// Adds a `[N, D]` batch of features.
    pub fn add(&mut self, features: &Tensor) -> lab_plugin_api::Result<()> {
        let x = features.to_kind(Kind::Double);
        let dim = x.size()[1];
        if let Some(sum) = &self.sum {
            if sum.size()[0] != dim {
                return Err(lab_plugin_api::Error::new(format!(
                    "features changed size: {} before, {dim} now",
                    sum.size()[0]
                )));
            }
        }
        let batch_sum = x.sum_dim_intlist(0, false, Kind::Double);
        match (&mut self.sum, &mut self.outer) {
            (Some(sum), Some(outer)) => {
                *sum += batch_sum;
                // In place: outer += xᵀx, without a temporary [D, D] product.
                let _ = outer.addmm_(&x.tr(), &x);
            }
            _ => {
                self.sum = Some(batch_sum);
                self.outer = Some(x.tr().mm(&x));
            }
        }
        self.count += x.size()[0];
        Ok(())
    }

    /// Samples seen so far.
    pub fn count(&self) -> i64 {
        self.count
    }

    /// Mean and unbiased covariance (divided by n − 1, as `numpy.cov` and the original TTUR
    /// code do; stylegan2-ada-pytorch divides by n, which differs by a factor 1 + 1/(n − 1)).
    pub fn stats(&self, features_sha256: &str) -> lab_plugin_api::Result<GaussianStats> {
        let (Some(sum), Some(outer)) = (&self.sum, &self.outer) else {
            return Err("no samples".into());
        };
        if self.count < 2 {
            return Err(lab_plugin_api::Error::new(format!(
                "a covariance needs at least 2 samples; got {}",
                self.count
            )));
        }
        let n = self.count as f64;
        let mu = sum / n;
        let sigma = (outer - mu.outer(&mu) * n) / (n - 1.0);
        // Σxxᵀ − nμμᵀ is symmetric in exact arithmetic; make it so in floating point too.
        let sigma = (&sigma + sigma.tr()) * 0.5;
        Ok(GaussianStats { mu, sigma, count: self.count, features_sha256: features_sha256.to_string() })
    }
}

/// The mean and covariance of a feature set, with what produced them.
#[derive(Debug)]
pub struct GaussianStats {
    /// Mean, f64 `[D]`.
    pub mu: Tensor,
    /// Unbiased covariance, f64 `[D, D]`.
    pub sigma: Tensor,
    /// How many samples they summarise.
    pub count: i64,
    /// Hex SHA-256 of the feature network (empty if unknown).
    pub features_sha256: String,
}

impl GaussianStats {
    /// The feature dimension D.
    pub fn dim(&self) -> i64 {
        self.mu.size()[0]
    }

    /// Writes the statistics to `path` atomically (a temporary file, then a rename), creating
    /// its folder if needed.
    pub fn save(&self, path: &Path) -> lab_plugin_api::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let tensors = [
            ("mu", self.mu.to_device(Device::Cpu).contiguous()),
            ("sigma", self.sigma.to_device(Device::Cpu).contiguous()),
            ("count", Tensor::from_slice(&[self.count])),
            ("features_sha256", Tensor::from_slice(self.features_sha256.as_bytes())),
        ];
        Tensor::write_safetensors(&tensors, &tmp)
            .map_err(|e| format!("cannot write reference statistics {}: {e}", tmp.display()))?;
        Ok(std::fs::rename(&tmp, path)
            .map_err(|e| format!("cannot write reference statistics {}: {e}", path.display()))?)
    }

    /// Reads statistics written by [`GaussianStats::save`] onto `device`.
    pub fn load(path: &Path, device: Device) -> lab_plugin_api::Result<Self> {
        let bad = |why: String| format!("reference statistics {}: {why}", path.display());
        let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| bad(format!("no tensor `{name}` (expected mu, sigma, count, features_sha256)")))
        };
        let mu = get("mu")?.to_kind(Kind::Double).to_device(device);
        let sigma = get("sigma")?.to_kind(Kind::Double).to_device(device);
        let count = get("count")?.int64_value(&[0]);
        let sha = get("features_sha256")?;
        let sha = String::from_utf8(Vec::<u8>::try_from(&sha).map_err(|e| bad(e.to_string()))?)
            .map_err(|_| bad("`features_sha256` is not text".into()))?;
        let d = mu.size().first().copied().unwrap_or(0);
        if mu.dim() != 1 || sigma.size() != [d, d] {
            return Err(lab_plugin_api::Error::new(bad(format!(
                "mu has shape [{}] and sigma [{}]; expected [D] and [D, D]",
                shape(&mu),
                shape(&sigma)
            ))));
        }
        Ok(Self { mu, sigma, count, features_sha256: sha })
    }
}

/// The Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂):
/// ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2·Tr((Σ₁^½ Σ₂ Σ₁^½)^½).
///
/// Computed in float64 on the tensors' device with two symmetric eigendecompositions and no
/// general matrix square root: Σ₁^½ = V·diag(√λ)·Vᵀ from Σ₁'s eigenpairs, then M = Σ₁^½ Σ₂ Σ₁^½
/// is symmetric positive semi-definite, so Tr(M^½) is the sum of the square roots of its
/// eigenvalues. M has the eigenvalues of Σ₁Σ₂, which is why this equals the usual
/// `Tr(sqrtm(Σ₁Σ₂))`. Tiny negative eigenvalues from rounding are clamped to 0.
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> lab_plugin_api::Result<f64> {
    if a.dim() != b.dim() {
        return Err(lab_plugin_api::Error::new(format!("the two sides have {}-d and {}-d features", a.dim(), b.dim())));
    }
    let device = a.mu.device();
    let (mu1, s1) = (a.mu.to_kind(Kind::Double), a.sigma.to_kind(Kind::Double));
    let (mu2, s2) = (b.mu.to_kind(Kind::Double).to_device(device), b.sigma.to_kind(Kind::Double).to_device(device));
    let diff = &mu1 - &mu2;
    let (eigenvalues, eigenvectors) = s1.f_linalg_eigh("L").map_err(|e| format!("eigh(Σ₁) failed: {e}"))?;
    let root1 = (&eigenvectors * eigenvalues.clamp_min(0.0).sqrt().unsqueeze(0)).mm(&eigenvectors.tr());
    let m = root1.mm(&s2).mm(&root1);
    let m = (&m + m.tr()) * 0.5;
    let trace_sqrt =
        m.f_linalg_eigvalsh("L").map_err(|e| format!("eigvalsh failed: {e}"))?.clamp_min(0.0).sqrt().sum(Kind::Double);
    let fid = diff.dot(&diff) + s1.trace() + s2.trace() - trace_sqrt * 2.0;
    let fid = fid.double_value(&[]);
    if !fid.is_finite() {
        return Err("FID is not finite: the features contain NaN or infinity".into());
    }
    Ok(fid)
}

/// What identifies a set of reference statistics. Any change in these gives a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StatsKey<'a> {
    /// The dataset's name, as the experiment spells it (`cifar10`).
    pub dataset: &'a str,
    /// The split the reference images come from (`train`, `test`).
    pub split: &'a str,
    /// How many reference images (10000, 50000).
    pub count: i64,
    /// The feature network's hex SHA-256 (the protocol's `features.sha256`).
    pub features_sha256: &'a str,
    /// The resize rule ([`crate::features::RESIZE_RULE`] unless the core resizes itself).
    pub resize: &'a str,
}

/// Bumped if the statistics file format or the covariance convention ever changes.
const STATS_FORMAT: &str = "lab-fid-stats-v1 (unbiased covariance, float64)";

/// The hex SHA-256 of a canonical JSON of `key` and the file format: the same fields give the
/// same key on every machine.
pub fn stats_cache_key(key: &StatsKey<'_>) -> String {
    let text = serde_json::to_string(&(STATS_FORMAT, key)).expect("plain data");
    hex(&Sha256::digest(text.as_bytes()))
}

/// A readable cache file name: `fid-stats-<dataset>-<split>-<count>-<first 16 hex of the key>.safetensors`.
/// Characters other than ASCII letters, digits, `-` and `_` in the dataset and split become `_`.
pub fn stats_file_name(key: &StatsKey<'_>) -> String {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect::<String>()
    };
    format!(
        "fid-stats-{}-{}-{}-{}.safetensors",
        clean(key.dataset),
        clean(key.split),
        key.count,
        &stats_cache_key(key)[..16]
    )
}
