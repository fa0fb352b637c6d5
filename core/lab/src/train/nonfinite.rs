//! Non-finite losses, noticed without stopping the device.
//!
//! Reading a loss to the host to test it forces a device → host sync in every phase, which on a
//! GPU leaves it idle between steps. Instead each loss is tested on the device and the first
//! non-finite one (its step, which loss, its value) is kept in three device scalars; the trainer
//! reads them only where it reads the device anyway (logging, sample grids, evaluations) and
//! before every checkpoint, so a poisoned state is never saved and the error names the first
//! bad step, however many steps later it is read.

use std::sync::atomic::{AtomicU64, Ordering};

use tch::{Device, Kind, Tensor};

/// Values the core has read from the device to the host, for tests and benchmarks: between
/// logging steps the count must not move (see [`read_f64`]).
pub static HOST_READS: AtomicU64 = AtomicU64::new(0);

/// Reads a scalar tensor to the host, counting the read. The trainer reads through this only.
pub fn read_f64(t: &Tensor) -> f64 {
    HOST_READS.fetch_add(1, Ordering::Relaxed);
    t.double_value(&[])
}

/// The first non-finite loss, kept on the device.
pub(super) struct Watch {
    /// The step of the first non-finite loss, −1 while there is none.
    step: Tensor,
    /// Which loss: an index into `names`.
    which: Tensor,
    /// Its value (NaN or ±inf), as a double.
    value: Tensor,
    /// The losses watched so far, by description ("the discriminator loss (`hinge`)").
    names: Vec<String>,
}

/// What [`Watch::check`] found.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NonFinite {
    pub step: u64,
    pub loss: String,
    pub value: f64,
}

impl Watch {
    pub fn new(device: Device) -> Self {
        Self {
            step: Tensor::full([], -1, (Kind::Int64, device)),
            which: Tensor::full([], -1, (Kind::Int64, device)),
            value: Tensor::zeros([], (Kind::Double, device)),
            names: Vec::new(),
        }
    }

    /// Notes `loss` (a scalar) of `step`, described as `name`, if it is the first non-finite one.
    /// Device work only: a few scalar kernels, no read.
    pub fn watch(&mut self, step: u64, name: &str, loss: &Tensor) {
        let index = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        let loss = loss.detach().to_kind(Kind::Double);
        let first = loss.isfinite().logical_not().logical_and(&self.step.lt(0));
        self.value = loss.where_self(&first, &self.value);
        let _ = self.step.masked_fill_(&first, step as i64);
        let _ = self.which.masked_fill_(&first, index as i64);
    }

    /// Reads the note (one host read, three when there is a bad loss): the first non-finite loss.
    pub fn check(&self) -> Option<NonFinite> {
        let step = read_f64(&self.step);
        (step >= 0.0).then(|| NonFinite {
            step: step as u64,
            loss: self.names.get(read_f64(&self.which) as usize).cloned().unwrap_or_default(),
            value: read_f64(&self.value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_finite_loss_is_kept_and_later_ones_are_not() {
        let mut watch = Watch::new(Device::Cpu);
        watch.watch(1, "the D loss", &Tensor::from(0.5f32));
        assert_eq!(watch.check(), None);
        let reads = HOST_READS.load(Ordering::Relaxed);
        watch.watch(2, "the G loss", &Tensor::from(f32::INFINITY));
        watch.watch(3, "the D loss", &Tensor::from(f32::NAN));
        assert_eq!(HOST_READS.load(Ordering::Relaxed), reads, "watching reads nothing");
        assert_eq!(watch.check(), Some(NonFinite { step: 2, loss: "the G loss".into(), value: f64::INFINITY }));
    }
}
