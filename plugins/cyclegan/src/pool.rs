//! The image pool of Shrivastava et al. (2017) as CycleGAN uses it: each discriminator learns
//! from a history of generated images instead of only the latest ones, which damps the
//! oscillation between G and D.
//!
//! Per image of a query: while the pool is not full it is stored and returned; once full, with
//! probability ½ a stored image chosen uniformly is returned and the new one takes its place,
//! otherwise the new image is returned and the pool is unchanged. The draws come from
//! libtorch's CPU generator, which the core seeds before every phase, so a run and its resume
//! draw the same; the stored images are part of the loss state ([`ImagePool::state`]), written
//! bit-exactly.
use base64::Engine;
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{Error, Result};
use serde::{Deserialize, Serialize};

/// A pool of at most `capacity` images, each `[C, H, W]`.
#[derive(Debug)]
pub struct ImagePool {
    capacity: usize,
    images: Vec<Tensor>,
    device: Device,
}

/// What a checkpoint keeps of one pool: its images as one `[n, C, H, W]` tensor, written as
/// the little-endian bytes of its values, base64-encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolState {
    pub capacity: usize,
    /// `float32` or `float64`.
    pub dtype: String,
    /// `[n, C, H, W]`; `[0]` for an empty pool.
    pub shape: Vec<i64>,
    pub data: String,
}

impl ImagePool {
    /// An empty pool; `capacity` 0 makes [`query`](Self::query) return its input.
    pub fn new(capacity: usize, device: Device) -> Self {
        Self { capacity, images: Vec::with_capacity(capacity), device }
    }

    /// Images stored now.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The stored images, in slot order.
    pub fn images(&self) -> &[Tensor] {
        &self.images
    }

    /// What D sees for the batch `images` (`[N, C, H, W]`, detached): per image, itself or an
    /// older image it replaces in the pool.
    pub fn query(&mut self, images: &Tensor) -> Tensor {
        let images = images.detach();
        if self.capacity == 0 {
            return images;
        }
        let mut out = Vec::with_capacity(images.size()[0] as usize);
        for image in images.unbind(0) {
            if self.images.len() < self.capacity {
                self.images.push(image.copy());
                out.push(image);
            } else if Tensor::rand([1], (Kind::Double, Device::Cpu)).double_value(&[0]) < 0.5 {
                let slot = Tensor::randint(self.capacity as i64, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]);
                let old = std::mem::replace(&mut self.images[slot as usize], image.copy());
                out.push(old);
            } else {
                out.push(image);
            }
        }
        Tensor::stack(&out, 0)
    }

    /// The pool as text-safe data, bit-exact.
    pub fn state(&self) -> Result<PoolState> {
        if self.images.is_empty() {
            return Ok(PoolState {
                capacity: self.capacity,
                dtype: "float32".into(),
                shape: vec![0],
                data: String::new(),
            });
        }
        let stacked = Tensor::stack(&self.images, 0).to_device(Device::Cpu).contiguous();
        let (dtype, bytes) = match stacked.kind() {
            Kind::Float => {
                let values = Vec::<f32>::try_from(stacked.flatten(0, -1)).map_err(|e| Error::new(e.to_string()))?;
                ("float32", values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
            }
            Kind::Double => {
                let values = Vec::<f64>::try_from(stacked.flatten(0, -1)).map_err(|e| Error::new(e.to_string()))?;
                ("float64", values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
            }
            other => {
                return Err(Error::new(format!(
                    "the image pool holds {other:?} images; only float32 and float64 are saved"
                )))
            }
        };
        Ok(PoolState {
            capacity: self.capacity,
            dtype: dtype.into(),
            shape: stacked.size(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }

    /// Restores what [`state`](Self::state) wrote. The capacity is the current config's: a
    /// pool saved fuller than that is refused rather than silently cut.
    pub fn load_state(&mut self, state: &PoolState) -> Result<()> {
        let bad = |why: String| Error::new(format!("the cyclegan loss state's image pool is malformed: {why}"));
        if state.shape == [0] {
            self.images.clear();
            return Ok(());
        }
        if state.shape.len() != 4 || state.shape.iter().any(|&d| d <= 0) {
            return Err(bad(format!("expected a shape [n, C, H, W], found {:?}", state.shape)));
        }
        let count = state.shape[0] as usize;
        if count > self.capacity {
            return Err(Error::config(
                "pool_size",
                format!(
                    "the checkpoint's pool holds {count} images but pool_size is {}; resume with pool_size >= {count}",
                    self.capacity
                ),
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&state.data)
            .map_err(|e| bad(format!("its data is not base64: {e}")))?;
        let values: i64 = state.shape.iter().product();
        let (kind, width) = match state.dtype.as_str() {
            "float32" => (Kind::Float, 4),
            "float64" => (Kind::Double, 8),
            other => return Err(bad(format!("dtype {other:?}; expected \"float32\" or \"float64\""))),
        };
        if bytes.len() as i64 != values * width {
            return Err(bad(format!(
                "{} bytes of data for shape {:?} of {} ({} expected)",
                bytes.len(),
                state.shape,
                state.dtype,
                values * width
            )));
        }
        let flat = match kind {
            Kind::Float => Tensor::from_slice(
                &bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<f32>>(),
            ),
            _ => Tensor::from_slice(
                &bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect::<Vec<f64>>(),
            ),
        };
        let stacked = flat.reshape(&state.shape).to_device(self.device);
        self.images = stacked.unbind(0).into_iter().map(|t| t.copy()).collect();
        Ok(())
    }
}
