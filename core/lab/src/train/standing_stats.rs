//! Standing statistics (Brock et al. 2019, "Large Scale GAN Training", §3.1 and appendix): before
//! an evaluation, the generator's batch-norm running statistics are re-estimated for the weights
//! being evaluated, as the mean of the statistics of `eval.standing_stats` batches of prior
//! samples run through it in training mode. Afterwards every buffer is put back, so training,
//! checkpoints and resumes never see them.
//!
//! Why the core does it and not each plugin: the statistics a generator samples with are a
//! protocol choice, and one protocol for every system keeps FIDs comparable. A plugin's batch
//! norm keeps its statistics as an exponential average whose momentum the core cannot read
//! through the interface, so the momentum is measured (one batch run twice, from statistics of
//! 0 and of 1) and every batch's own statistics are then recovered exactly: the result is the
//! plain mean over the batches, whatever momentum each layer uses.
use lab_plugin_api::host::NetworkHandle;
use tch::{Device, Kind, Tensor};

use crate::metrics::EvalConfig;
use crate::seeds::{key, seed_torch, Stream};

/// What recalibration needs of a network: its named tensors (sharing storage with it) and a
/// training-mode forward pass. [`NetworkHandle`](lab_plugin_api::host::NetworkHandle) is one;
/// the unit tests use a network written in the test.
pub(crate) trait Recalibrate {
    /// `(name, tensor, trainable)`, sharing storage with the network.
    fn named_tensors(&self) -> Result<Vec<(String, Tensor, bool)>, String>;
    /// One forward pass in training mode (batch norm normalises by, and records, the batch).
    fn forward_train(&mut self, inputs: &[Tensor]) -> Result<(), String>;
}

impl Recalibrate for NetworkHandle {
    fn named_tensors(&self) -> Result<Vec<(String, Tensor, bool)>, String> {
        self.tensors().map_err(|e| e.to_string())
    }

    fn forward_train(&mut self, inputs: &[Tensor]) -> Result<(), String> {
        self.forward(inputs, true).map(drop).map_err(|e| e.to_string())
    }
}

/// The leaf names of batch-norm running statistics: tch's and PyTorch's, and `lab_nn`'s (which
/// are BigGAN-PyTorch's). A plugin's own batch norm must use one pair to be recalibrated.
const STATISTIC_NAMES: [&str; 4] = ["running_mean", "running_var", "stored_mean", "stored_var"];

/// Whether `name` is a batch norm's running mean or variance.
fn is_running_statistic(name: &str) -> bool {
    STATISTIC_NAMES.contains(&name.rsplit('.').next().unwrap_or(name))
}

/// Why a network cannot be recalibrated.
pub(crate) const NO_STATISTICS: &str =
    "the generator has no batch-norm running statistics (no tensor named `*.running_mean` or `*.stored_mean`)";

/// The names of the network's batch-norm running statistics (empty when it has none).
pub(crate) fn running_statistics(net: &impl Recalibrate) -> Result<Vec<String>, String> {
    Ok(net.named_tensors()?.into_iter().filter(|(n, _, t)| !t && is_running_statistic(n)).map(|(n, ..)| n).collect())
}

/// The network's buffers as they were before recalibration; dropping it puts them all back.
pub(crate) struct Restore {
    buffers: Vec<(Tensor, Tensor)>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        tch::no_grad(|| {
            for (live, saved) in &mut self.buffers {
                live.copy_(saved);
            }
        });
    }
}

/// Sets the network's running statistics to the mean of the statistics of `batches` batches
/// (`inputs(k)` gives batch k's inputs, seeding whatever it draws from k alone: it is called
/// twice for batch 0). Every other buffer (a spectral norm's power-iteration vector) is held at
/// its value for every pass. Returns the guard that restores all buffers.
pub(crate) fn recalibrate(
    net: &mut impl Recalibrate,
    batches: u64,
    mut inputs: impl FnMut(u64) -> Result<Vec<Tensor>, String>,
) -> Result<Restore, String> {
    let (names, live): (Vec<String>, Vec<Tensor>) =
        net.named_tensors()?.into_iter().filter(|(_, _, trainable)| !trainable).map(|(n, t, _)| (n, t)).unzip();
    let restore = Restore {
        buffers: live
            .into_iter()
            .map(|t| {
                let saved = t.copy();
                (t, saved)
            })
            .collect(),
    };
    let stats: Vec<usize> = (0..names.len()).filter(|&i| is_running_statistic(&names[i])).collect();
    if stats.is_empty() {
        return Err(NO_STATISTICS.into());
    }
    if batches == 0 {
        return Err("standing statistics need at least one batch".into());
    }
    let buffer = |i: usize| restore.buffers[i].0.shallow_clone();
    let reset = || {
        for (live, saved) in &restore.buffers {
            live.shallow_clone().copy_(saved);
        }
    };
    tch::no_grad(|| -> Result<(), String> {
        // One training-mode pass from every statistic at `fill` and every other buffer at its
        // saved value; returns the statistics `read` afterwards.
        let mut pass = |fill: f64, batch: &[Tensor], read: &[usize]| -> Result<Vec<Tensor>, String> {
            reset();
            for &i in &stats {
                let _ = buffer(i).fill_(fill);
            }
            net.forward_train(batch)?;
            Ok(read.iter().map(|&i| buffer(i).to_kind(Kind::Double)).collect())
        };
        // r = (1 − m)·r₀ + m·b: from r₀ = 0 and r₀ = 1 on the same batch, 1 − m = r(1) − r(0).
        let from_zero = pass(0.0, &inputs(0)?, &stats)?;
        let from_one = pass(1.0, &inputs(0)?, &stats)?;
        // A statistic the pass never reaches (a layer on another path) keeps its value.
        let (mut reached, mut momenta, mut sums) = (Vec::new(), Vec::new(), Vec::new());
        for ((&i, r0), r1) in stats.iter().zip(&from_zero).zip(&from_one) {
            let m = 1.0 - (r1 - r0).mean(Kind::Double).double_value(&[]);
            if m.abs() < 1e-6 {
                continue;
            }
            if !(m > 0.0 && m <= 1.0 + 1e-6) {
                return Err(format!(
                    "`{}` does not move towards the batch's statistics in training mode (measured momentum {m:.3e}), so they cannot be re-estimated",
                    names[i]
                ));
            }
            reached.push(i);
            momenta.push(m);
            sums.push(r0 / m);
        }
        if reached.is_empty() {
            return Err("no batch-norm running statistics of the generator move in a training-mode pass, so none can be re-estimated".into());
        }
        for k in 1..batches {
            let r = pass(0.0, &inputs(k)?, &reached)?;
            for ((sum, r), m) in sums.iter_mut().zip(&r).zip(&momenta) {
                *sum += r / *m;
            }
        }
        reset();
        for (&i, sum) in reached.iter().zip(&sums) {
            let mut target = buffer(i);
            let mean = (sum / batches as f64).to_kind(target.kind());
            target.copy_(&mean);
        }
        Ok(())
    })?;
    Ok(restore)
}

/// Re-estimates `generator`'s statistics from `batches` batches of `batch_size` latents from
/// `latent` (keyed by `seed` and the batch index alone, so the same weights always get the same
/// statistics) and, for a conditional generator, every class in turn. `None` when `batches` is 0.
pub(crate) fn standing(
    generator: &mut NetworkHandle,
    batches: u64,
    batch_size: i64,
    seed: u64,
    num_classes: i64,
    device: Device,
    mut latent: impl FnMut(i64) -> Result<Tensor, String>,
) -> Result<Option<Restore>, String> {
    if batches == 0 {
        return Ok(None);
    }
    let b = batch_size.max(1);
    recalibrate(generator, batches, |k| {
        seed_torch(key(seed, Stream::StandingStats, &[k]));
        let mut inputs = vec![latent(b)?];
        if num_classes > 0 {
            inputs.push(Tensor::arange(b, (Kind::Int64, device)).remainder(num_classes));
        }
        Ok(inputs)
    })
    .map(Some)
}

/// [`standing`] as `eval.standing_stats` asks for it, in batches of `eval.batch_size`.
pub(crate) fn for_evaluation(
    generator: &mut NetworkHandle,
    cfg: &EvalConfig,
    seed: u64,
    num_classes: i64,
    device: Device,
    latent: impl FnMut(i64) -> Result<Tensor, String>,
) -> Result<Option<Restore>, String> {
    // Without metric plugins no prior sample is scored (an architecture's own measures use
    // the training statistics), so there is nothing to recalibrate for.
    let batches = if cfg.enabled() { cfg.standing_stats } else { 0 };
    standing(generator, batches, cfg.batch_size, seed, num_classes, device, latent)
        .map_err(|m| format!("eval.standing_stats: {m}"))
}

#[cfg(test)]
mod tests;
