//! The run folder: one per run, laid out so `tensorboard --logdir runs/` groups runs by
//! experiment. Everything needed to understand a run afterwards is written here.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Experiment;

/// A run-folder label from `--set` overrides: `augment.name=diffaugment__data.fraction=0.1`, so
/// that TensorBoard's run list says what differs between runs of one experiment. The seed (in
/// the name already) and the device are left out; characters a folder name should not have
/// become `_`, and a long label is cut (the config hash still tells runs apart).
pub fn run_label(set: &[String]) -> String {
    const MAX: usize = 96;
    let assignments: Vec<(String, String)> = set
        .iter()
        .filter_map(|a| a.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| k != "seed" && k != "device")
        .collect();
    if assignments.is_empty() {
        return String::new();
    }
    // Named like a sweep member, so a `--set` run and the member it equals read the same.
    let mut label = crate::sweep::member_name(&assignments);
    if label.len() > MAX {
        label.truncate(MAX);
        label.push('+');
    }
    label
}

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// `runs/<experiment>/<YYYYmmdd-HHMMSS>-s<seed>[-<label>]-<config hash>/`, where `label`
    /// says how this run departs from its experiment file (see [`run_label`]).
    pub fn create(runs_dir: &Path, exp: &Experiment, label: &str) -> std::io::Result<Self> {
        let hash = format!("{:x}", Sha256::digest(exp.to_toml().as_bytes()));
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let base = match label {
            "" => format!("{stamp}-s{}-{}", exp.seed, &hash[..8]),
            label => format!("{stamp}-s{}-{label}-{}", exp.seed, &hash[..8]),
        };
        let parent = runs_dir.join(&exp.name);
        let mut path = parent.join(&base);
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = parent.join(format!("{base}-{n}"));
        }
        std::fs::create_dir_all(path.join("samples"))?;
        std::fs::create_dir_all(path.join("checkpoints"))?;
        Ok(Self { path })
    }

    pub fn open(path: &Path) -> Self {
        Self { path: path.to_path_buf() }
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn manifest(&self) -> PathBuf {
        self.path.join("manifest.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    pub fn summary(&self) -> PathBuf {
        self.path.join("summary.json")
    }
    pub fn samples(&self) -> PathBuf {
        self.path.join("samples")
    }
    pub fn last_checkpoint(&self) -> PathBuf {
        self.path.join("checkpoints").join("last.safetensors")
    }
    /// The checkpoint `last` replaced: the fallback when `last` is unreadable.
    pub fn previous_checkpoint(&self) -> PathBuf {
        self.path.join("checkpoints").join("previous.safetensors")
    }
}

/// One plugin that took part in the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PluginRecord {
    pub kind: String,
    pub name: String,
    pub version: String,
    pub library: PathBuf,
    pub sha256: String,
}

/// What ran, where, and with what: `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub lab_version: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub command: Vec<String>,
    pub plugins: Vec<PluginRecord>,
    pub libtorch: String,
    pub cuda_available: bool,
    pub cudnn_version: Option<i64>,
    pub device: String,
    pub seed: u64,
    pub host: String,
    pub started: String,
    pub finished: Option<String>,
    pub status: String,
    pub resumed_from_step: Option<u64>,
    /// What decides CPU numerics here (absent in manifests written before it was recorded).
    #[serde(default)]
    pub cpu: Option<crate::numerics::CpuNumerics>,
}

fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Manifest {
    pub fn new(exp: &Experiment, device: tch::Device, plugins: Vec<PluginRecord>) -> Self {
        let cuda = tch::Cuda::is_available();
        Self {
            lab_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
            command: std::env::args().collect(),
            plugins,
            libtorch: lab_plugin_api::LIBTORCH_VERSION.to_string(),
            cuda_available: cuda,
            cudnn_version: (cuda && tch::Cuda::cudnn_is_available()).then(tch::utils::version_cudnn),
            device: format!("{device:?}"),
            seed: exp.seed,
            host: hostname(),
            started: now(),
            finished: None,
            status: "running".into(),
            resumed_from_step: None,
            cpu: Some(crate::numerics::CpuNumerics::current()),
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_json(path, self)
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

pub fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Writes JSON atomically (temp file + rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value).map_err(std::io::Error::other)? + "\n")?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod label_tests {
    use super::run_label;

    #[test]
    fn the_label_says_what_differs_without_seed_or_device() {
        let set =
            ["augment.name=\"diffaugment\"", "seed=3", "data.fraction=0.1", "device=\"cpu\"", "eval.metrics=[\"fid\"]"];
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        assert_eq!(run_label(&set), "augment.name=diffaugment__data.fraction=0.1__eval.metrics=__fid__");
        assert_eq!(run_label(&[]), "");
        let long = vec![format!("name={}", "x".repeat(200))];
        assert_eq!(run_label(&long).len(), 97);
    }
}
