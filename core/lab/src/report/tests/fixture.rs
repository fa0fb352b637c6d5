//! Fake run folders for report tests: config.toml, metrics.jsonl, summary.json (with a
//! protocol shaped like the metric plugins' own) and manifest.json, written into a temp dir.
use std::path::{Path, PathBuf};

use serde_json::json;

pub const INCEPTION_SHA: &str = "f5ad4c4a1b6a1a2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80912a";

/// One fake run.
pub struct RunFixture {
    pub experiment: String,
    pub seed: u64,
    pub cr_lambda: f64,
    pub augment: String,
    pub fraction: f64,
    pub dataset: String,
    pub steps: u64,
    /// `None`: no summary.json (still running or crashed).
    pub status: Option<String>,
    /// Evaluations: (step, fid, is).
    pub evals: Vec<(u64, f64, f64)>,
    pub num_samples: u64,
    pub sha: String,
    /// Where this run's copy of the feature network lives (differs between machines).
    pub features_path: String,
}

impl RunFixture {
    pub fn new(experiment: &str, seed: u64) -> Self {
        Self {
            experiment: experiment.into(),
            seed,
            cr_lambda: 0.0,
            augment: "none".into(),
            fraction: 1.0,
            dataset: "cifar10".into(),
            steps: 250_000,
            status: Some("finished".into()),
            evals: vec![(4000, 30.0, 7.0), (8000, 20.0, 8.0)],
            num_samples: 10_000,
            sha: INCEPTION_SHA.into(),
            features_path: format!("/home/user{seed}/.cache/lab/inception-2015-12-05.pt"),
        }
    }

    pub fn cr(mut self, lambda: f64) -> Self {
        self.cr_lambda = lambda;
        self
    }

    pub fn augment(mut self, name: &str) -> Self {
        self.augment = name.into();
        self
    }

    pub fn fraction(mut self, f: f64) -> Self {
        self.fraction = f;
        self
    }

    pub fn evals(mut self, evals: &[(u64, f64, f64)]) -> Self {
        self.evals = evals.to_vec();
        self
    }

    pub fn status(mut self, status: Option<&str>) -> Self {
        self.status = status.map(str::to_string);
        self
    }

    pub fn protocol(&self) -> serde_json::Value {
        let features = json!({
            "file": "inception-2015-12-05.pt",
            "path": self.features_path,
            "sha256": self.sha,
            "call": "forward(uint8 NCHW images, false)",
            "gray_to_rgb": "off",
            "resize": "none in lab: images go to the network at their native size as uint8; inception-2015-12-05.pt resizes to 299x299 internally (TF-style bilinear)",
            "batch_size": 100 + self.seed,
        });
        json!({
            "num_samples": self.num_samples,
            "generator": "EMA generator in eval mode (the training generator when EMA is off)",
            "sample_seed": "keyed by (run seed, eval, batch index)",
            "reference": {"dataset": self.dataset, "split": "test", "count": 10000,
                          "fid_reference_stats": format!("/home/user{}/.cache/lab/stats/fid.safetensors", self.seed)},
            "metrics": {
                "fid": {"metric": "fid", "features": features, "generated_count": self.num_samples,
                        "reference": {"source": if self.seed == 0 { "statistics file (written from real batches)" } else { "statistics file (loaded)" },
                                      "path": "/tmp/stats", "count": 10000, "real_images_ignored": 0},
                        "covariance": "unbiased (divided by n - 1)",
                        "matrix_sqrt": format!("symmetric eigendecomposition in float64 on Cuda({})", self.seed)},
                "is": {"metric": "is", "features": features, "generated_count": self.num_samples, "splits": 10,
                       "std": "population (numpy.std)", "real_images_ignored": 10000},
            },
        })
    }

    /// Writes the run folder `<runs>/<experiment>/<stamp>-s<seed>-<tag>` and returns it.
    pub fn write(&self, runs: &Path, tag: &str) -> PathBuf {
        let dir = runs.join(&self.experiment).join(format!("20260101-000000-s{}-{tag}", self.seed));
        std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
        let config = format!(
            "name = \"{}\"\nseed = {}\ndevice = \"cuda:{}\"\n\n[data]\ndataset = \"{}\"\nfraction = {:?}\n\n[model]\narchitecture = \"biggan\"\n\n[loss]\nname = \"hinge\"\n\n[loss.config]\ncr_lambda = {:?}\n\n[augment]\nname = \"{}\"\n\n[train]\nsteps = {}\n\n[log]\nevery = {}\n\n[eval]\nfeatures = \"{}\"\n",
            self.experiment, self.seed, self.seed, self.dataset, self.fraction, self.cr_lambda, self.augment, self.steps, 100 + self.seed, self.features_path
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut lines = String::new();
        for &(step, fid, is) in &self.evals {
            lines.push_str(&format!("{{\"step\":{step},\"time\":1.0,\"key\":\"loss/d\",\"value\":0.5}}\n"));
            lines.push_str(&format!("{{\"step\":{step},\"time\":2.0,\"key\":\"eval/fid\",\"value\":{fid}}}\n"));
            lines.push_str(&format!("{{\"step\":{step},\"time\":2.0,\"key\":\"eval/is\",\"value\":{is}}}\n"));
        }
        std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            json!({"started": format!("2026-01-01T00:00:0{}+00:00", self.seed % 10), "seed": self.seed}).to_string(),
        )
        .unwrap();
        if let Some(status) = &self.status {
            let eval = self.evals.last().map(|&(step, fid, is)| {
                let best = self.evals.iter().fold(self.evals[0], |b, e| if e.1 < b.1 { *e } else { b });
                json!({
                    "final": {"step": step, "values": {"fid": fid, "is": is, "is_std": 0.1},
                              "higher_is_better": {"fid": false, "is": true, "is_std": false},
                              "protocol": self.protocol(), "seconds": 12.5},
                    "best": {"metric": "fid", "value": best.1, "step": best.0, "checkpoint": dir.join("checkpoints/best.safetensors")},
                })
            });
            let summary = json!({"status": status, "eval": eval, "steps": self.steps, "wall_time_s": 1.0,
                                 "images_per_s": 1.0, "final_scalars": {}, "samples": null, "checkpoint": null});
            std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
        }
        dir
    }
}
