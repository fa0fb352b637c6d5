//! The feature network: a local TorchScript file, found, hashed, loaded once per process and
//! device, and called the way stylegan2-ada-pytorch calls `inception-2015-12-05.pt`.
//!
//! The call convention is `forward(images, flags...)`: `images` is the uint8 NCHW batch exactly
//! as the core hands it over (values 0–255, native resolution), followed by positional boolean
//! arguments (`feature_args`, `probs_args` in the configs). The standard network converts to
//! float and resizes to 299×299 itself (TF-style bilinear), so `lab` never resizes: the resize
//! rule is the network's, and the protocol records which network by its SHA-256.
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use lab_plugin_api::tch::{self, CModule, Device, IValue, Kind, Tensor};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::network::NetworkConfig;

/// The file name of the standard feature network.
pub const DEFAULT_FILE: &str = lab_plugin_api::paths::INCEPTION_FILE;
/// Where stylegan2-ada-pytorch publishes the TorchScript port of TF-Inception (2015-12-05).
pub const DEFAULT_URL: &str = lab_plugin_api::paths::INCEPTION_URL;
/// The environment variable consulted when `features` is "".
pub const ENV_VAR: &str = lab_plugin_api::paths::FEATURES_ENV;

/// How the standard network treats image size, recorded in every protocol.
pub const RESIZE_RULE: &str = "none in lab: images go to the network at their native size as uint8; \
inception-2015-12-05.pt resizes to 299x299 internally (TF-style bilinear)";

/// Where the feature file was looked for, so the error can say how to change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `features` config key.
    Config,
    /// `$LAB_FEATURES`.
    Env,
    /// `~/.cache/lab/inception-2015-12-05.pt`.
    Default,
}

/// Resolves the feature file from the `features` key: the key itself, else `$LAB_FEATURES`,
/// else the default cache location.
pub fn resolve_path(features: &str) -> (PathBuf, Source) {
    if !features.is_empty() {
        return (PathBuf::from(features), Source::Config);
    }
    match std::env::var(ENV_VAR) {
        Ok(p) if !p.is_empty() => (PathBuf::from(p), Source::Env),
        _ => (default_path(), Source::Default),
    }
}

/// `~/.cache/lab/inception-2015-12-05.pt` (`$XDG_CACHE_HOME/lab/...` when that is set).
pub fn default_path() -> PathBuf {
    lab_plugin_api::paths::default_feature_network()
}

/// The message for a feature file that is not there: which file, why that one, how to get it.
pub fn missing_message(path: &Path, source: &Source) -> String {
    let why = match source {
        Source::Config => "set by the metric's `features` key".to_string(),
        Source::Env => format!("set by ${ENV_VAR}"),
        Source::Default => format!("the default; set the metric's `features` key or ${ENV_VAR} to use another file"),
    };
    format!(
        "feature network not found: {} ({why})\n\
         FID, KID, IS and precision/recall need a TorchScript feature network. The standard one is \
         {DEFAULT_FILE} from stylegan2-ada-pytorch (96 MB); `lab data fetch inception` downloads it to the \
         default place and checks its SHA-256 (a run also does, on first use, when the network is reachable). \
         By hand:\n  \
         mkdir -p {dir} && curl -L -o {path} {DEFAULT_URL}\n\
         The .pkl of the same name on api.ngc.nvidia.com (stylegan3) is a Python pickle, not TorchScript, and \
         cannot be loaded.",
        path.display(),
        dir = path.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into()),
        path = path.display(),
    )
}

/// The SHA-256 of a file, in lower-case hex.
pub fn sha256_file(path: &Path) -> lab_plugin_api::Result<String> {
    let mut file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A loaded TorchScript module and the hash of the file it came from.
struct Loaded {
    module: CModule,
    sha256: String,
}

/// Identifies one file's content on one device: path, size and modification time.
type CacheKey = (PathBuf, u64, Option<std::time::SystemTime>, i32);

/// Every metric of a run uses the same network: it is loaded and hashed once and shared while
/// any metric holds it (about 100 MB of weights for Inception).
fn load_shared(path: &Path, device: Device) -> lab_plugin_api::Result<Arc<Loaded>> {
    static CACHE: Mutex<Option<HashMap<CacheKey, Weak<Loaded>>>> = Mutex::new(None);
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let device_id = match device {
        Device::Cuda(i) => i as i32,
        _ => -1,
    };
    let key = (canonical, meta.len(), meta.modified().ok(), device_id);
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(loaded) = cache.get(&key).and_then(Weak::upgrade) {
        return Ok(loaded);
    }
    let sha256 = sha256_file(path)?;
    let mut module = CModule::load_on_device(path, device).map_err(|e| {
        format!(
            "cannot load feature network {} as TorchScript: {}\n\
             It must be a file written by torch.jit.save (for example {DEFAULT_URL}), not a pickle.",
            path.display(),
            first_line(&e.to_string())
        )
    })?;
    module.f_set_eval().map_err(|e| format!("feature network {}: {e}", path.display()))?;
    let loaded = Arc::new(Loaded { module, sha256 });
    cache.retain(|_, w| w.strong_count() > 0);
    cache.insert(key, Arc::downgrade(&loaded));
    Ok(loaded)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The line of a libtorch error that says what went wrong. An exception raised inside TorchScript
/// comes as "The following operation failed in the TorchScript interpreter.", two tracebacks,
/// and the exception itself on the last line before libtorch's C++ backtrace.
fn torch_error_summary(text: &str) -> &str {
    if !text.contains("failed in the TorchScript interpreter") {
        return first_line(text);
    }
    text.lines()
        .take_while(|l| !l.starts_with("Exception raised from") && !l.starts_with("frame #"))
        .filter(|l| !l.trim().is_empty())
        .last()
        .unwrap_or(text)
        .trim()
}

/// A feature network ready to be called on uint8 image batches.
pub struct FeatureNet {
    loaded: Arc<Loaded>,
    path: PathBuf,
    device: Device,
    repeat_gray: bool,
    batch_size: i64,
}

impl std::fmt::Debug for FeatureNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureNet").field("path", &self.path).field("sha256", &self.loaded.sha256).finish()
    }
}

impl FeatureNet {
    /// Finds, hashes and loads the network named by `config` onto `device`.
    pub fn load(config: &NetworkConfig, device: Device) -> lab_plugin_api::Result<Self> {
        config.validate()?;
        let (path, source) = resolve_path(&config.features);
        if !path.is_file() {
            return Err(missing_message(&path, &source).into());
        }
        let loaded = load_shared(&path, device)?;
        Ok(Self { loaded, path, device, repeat_gray: config.repeat_gray, batch_size: config.batch_size })
    }

    /// The SHA-256 of the network file.
    pub fn sha256(&self) -> &str {
        &self.loaded.sha256
    }

    /// Whether both use the same loaded module (the process-wide cache at work).
    pub fn shares_module_with(&self, other: &FeatureNet) -> bool {
        Arc::ptr_eq(&self.loaded, &other.loaded)
    }

    /// The network file's name, without its folder.
    pub fn file_name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Runs `forward(images, args...)` over `images` in chunks of `batch_size` and returns the
    /// outputs as one float32 `[N, D]` tensor on the network's device. Anything after the batch
    /// dimension is flattened, so `[N, D, 1, 1]` outputs work too.
    pub fn run(&self, images: &Tensor, args: &[bool]) -> lab_plugin_api::Result<Tensor> {
        let images = self.prepare(images)?;
        tch::no_grad(|| {
            let mut outputs = Vec::new();
            for chunk in images.split(self.batch_size, 0) {
                let mut inputs = vec![IValue::Tensor(chunk.shallow_clone())];
                inputs.extend(args.iter().map(|&b| IValue::Bool(b)));
                let out = self.loaded.module.forward_is(&inputs).map_err(|e| {
                    format!(
                        "feature network {} failed on a [{}] uint8 batch with arguments {args:?}: {}",
                        self.file_name(),
                        shape(&chunk),
                        torch_error_summary(&e.to_string())
                    )
                })?;
                let IValue::Tensor(out) = out else {
                    return Err(lab_plugin_api::Error::new(format!(
                        "feature network {}: forward(images, {args:?}) returned something other than a tensor",
                        self.file_name()
                    )));
                };
                if out.dim() < 2 || out.size()[0] != chunk.size()[0] {
                    return Err(lab_plugin_api::Error::new(format!(
                        "feature network {}: forward(images, {args:?}) on {} images returned shape [{}]; \
                         expected [{}, D]",
                        self.file_name(),
                        chunk.size()[0],
                        shape(&out),
                        chunk.size()[0]
                    )));
                }
                outputs.push(out.flatten(1, -1).to_kind(Kind::Float));
            }
            Ok(Tensor::cat(&outputs, 0))
        })
    }

    /// Checks the batch and brings it into the form the network takes: uint8 NCHW on the
    /// network's device, 3 channels if gray ones are repeated.
    fn prepare(&self, images: &Tensor) -> lab_plugin_api::Result<Tensor> {
        if images.dim() != 4 {
            return Err(lab_plugin_api::Error::new(format!(
                "metrics take NCHW image batches; got shape [{}]",
                shape(images)
            )));
        }
        if images.kind() != Kind::Uint8 {
            return Err(lab_plugin_api::Error::new(format!(
                "metrics take uint8 images (0-255); got {:?}",
                images.kind()
            )));
        }
        if images.size()[0] == 0 {
            return Err("metrics got an empty batch".into());
        }
        let images = images.to_device(self.device);
        if self.repeat_gray && images.size()[1] == 1 {
            Ok(images.repeat([1, 3, 1, 1]))
        } else {
            Ok(images)
        }
    }

    /// What the protocol records about the network and how it is called.
    pub fn protocol(&self, args: &[bool]) -> Json {
        json!({
            "file": self.file_name(),
            "path": self.path.display().to_string(),
            "sha256": self.sha256(),
            "call": format!("forward(uint8 NCHW images, {})", args.iter().map(bool::to_string).collect::<Vec<_>>().join(", ")),
            "gray_to_rgb": if self.repeat_gray { "1-channel images repeated to 3 channels" } else { "off" },
            "resize": RESIZE_RULE,
            "batch_size": self.batch_size,
        })
    }
}

/// A shape for messages: `3, 1, 32, 32`.
pub fn shape(t: &Tensor) -> String {
    t.size().iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}
