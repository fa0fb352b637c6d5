//! Checkpoints: one safetensors file holding every network's parameters and buffers, the EMA
//! generator, the optimizer state, plus text metadata (step, augmentation state, ...). Written to
//! a temporary file and renamed, so a crash never leaves a half-written checkpoint.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use tch::{Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: cannot write checkpoint: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("{}: cannot read checkpoint: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: checkpoint has no tensor `{name}`; it was written by a different architecture or config. Resume with the run's own config.toml.", path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("{}: tensor `{name}` has shape {found:?}, the model expects {expected:?}", path.display())]
    Shape { path: PathBuf, name: String, found: Vec<i64>, expected: Vec<i64> },
}

fn dtype(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn kind(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// A checkpoint in memory.
#[derive(Default)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

/// The metadata key holding [`tensors_digest`] of the file's tensors.
const CHECKSUM_KEY: &str = "lab.tensors_sha256";

/// SHA-256 over every tensor's name, dtype, shape and bytes, in name order. safetensors checks
/// the header's structure but not the data, so a flipped bit in a weight would load silently.
fn tensors_digest<'a>(tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (name, dtype, shape, bytes) in tensors {
        // Lengths first, so that no two different tensor lists hash the same bytes.
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(format!("{dtype:?}").as_bytes());
        hasher.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            hasher.update((d as u64).to_le_bytes());
        }
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    format!("{:x}", hasher.finalize())
}

impl Checkpoint {
    /// Writes atomically: a temporary file beside `path`, synced, then renamed over it. When any
    /// step fails (a full disk) the temporary file is removed and `path` is left as it was.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let err = |m: String| CheckpointError::Write { path: path.to_path_buf(), message: m };
        let mut buffers = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            let t = t.detach().to_device(tch::Device::Cpu).contiguous();
            let dt =
                dtype(t.kind()).ok_or_else(|| err(format!("tensor `{name}` has unsupported kind {:?}", t.kind())))?;
            let numel = t.numel();
            let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
            t.f_copy_data_u8(&mut bytes, numel).map_err(|e| err(e.to_string()))?;
            let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
            buffers.push((name.clone(), dt, shape, bytes));
        }
        let views: Vec<(String, TensorView<'_>)> = buffers
            .iter()
            .map(|(n, dt, shape, b)| {
                Ok((n.clone(), TensorView::new(*dt, shape.clone(), b).map_err(|e| err(e.to_string()))?))
            })
            .collect::<Result<_, CheckpointError>>()?;
        let mut meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let digest =
            tensors_digest(buffers.iter().map(|(n, dt, shape, b)| (n.as_str(), *dt, shape.as_slice(), b.as_slice())));
        meta.insert(CHECKSUM_KEY.to_string(), digest);
        let bytes = safetensors::serialize(views, &Some(meta)).map_err(|e| err(e.to_string()))?;
        let tmp = path.with_extension("safetensors.tmp");
        let written = (|| {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            let kept = if path.exists() { "the checkpoint already there is unchanged" } else { "nothing was written" };
            return Err(err(format!("{e} (writing {}); {kept}", crate::failure::human_bytes(bytes.len() as u64))));
        }
        // The rename itself is durable once the folder is synced (best effort where unsupported).
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let err = |m: String| CheckpointError::Read { path: path.to_path_buf(), message: m };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| err(e.to_string()))?;
        let mut metadata: BTreeMap<String, String> =
            header.metadata().clone().unwrap_or_default().into_iter().collect();
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| err(e.to_string()))?;
        // Checkpoints written before checksums existed have none; they load as they always did.
        if let Some(expected) = metadata.remove(CHECKSUM_KEY) {
            let mut views = st.tensors();
            views.sort_by(|a, b| a.0.cmp(&b.0));
            let found = tensors_digest(views.iter().map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())));
            if found != expected {
                return Err(err(format!(
                    "the tensors' checksum does not match the one written with them (SHA-256 {found}, expected \
                     {expected}): the file is damaged"
                )));
            }
        }
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let k = kind(view.dtype()).ok_or_else(|| err(format!("tensor `{name}` has unsupported dtype")))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let t = Tensor::f_from_data_size(view.data(), &shape, k).map_err(|e| err(e.to_string()))?;
            tensors.insert(name, t);
        }
        Ok(Self { tensors, metadata })
    }

    /// Copies the stored tensor `name` into `dst` in place (same storage, so plugins see it).
    pub fn restore_into(&self, path: &Path, name: &str, dst: &Tensor) -> Result<(), CheckpointError> {
        let src = self
            .tensors
            .get(name)
            .ok_or_else(|| CheckpointError::MissingTensor { path: path.to_path_buf(), name: name.to_string() })?;
        if src.size() != dst.size() {
            return Err(CheckpointError::Shape {
                path: path.to_path_buf(),
                name: name.to_string(),
                found: src.size(),
                expected: dst.size(),
            });
        }
        tch::no_grad(|| {
            let mut d = dst.shallow_clone();
            d.copy_(&src.to_device(dst.device()).to_kind(dst.kind()));
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut c = Checkpoint::default();
        c.tensors.insert("a.w".into(), Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu)));
        c.tensors.insert("b".into(), Tensor::from_slice(&[1i64, 2, 3]));
        c.metadata.insert("step".into(), "17".into());
        c.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.metadata["step"], "17");
        assert!(back.tensors["a.w"].equal(&c.tensors["a.w"]));
        assert!(back.tensors["b"].equal(&c.tensors["b"]));
        let dst = Tensor::zeros([3, 4], (Kind::Float, tch::Device::Cpu));
        back.restore_into(&path, "a.w", &dst).unwrap();
        assert!(dst.equal(&c.tensors["a.w"]));
        assert!(!back.metadata.contains_key(CHECKSUM_KEY), "the checksum is the file's, not the caller's");
    }

    #[test]
    fn a_flipped_bit_in_a_weight_is_caught_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut c = Checkpoint::default();
        c.tensors.insert("w".into(), Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]));
        c.save(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // The last byte is the high byte of the last float: 4.0 becomes another number.
        *bytes.last_mut().unwrap() ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let message = Checkpoint::load(&path).err().unwrap().to_string();
        assert!(message.contains("the tensors' checksum does not match"), "{message}");
        assert!(message.starts_with(&path.display().to_string()), "{message}");
    }
}
