//! D's overfitting signature, measured at evaluation steps: how often D calls its training
//! images real, against real images it never saw (the evaluation's reference set, the test
//! split by default). A D that memorises a small training set, the regime DiffAugment and ADA
//! address, keeps calling the first real while the second falls (Karras et al. 2020, Fig. 1;
//! Zhao et al. 2020, Fig. 2). Logged as `eval/overfit/*`:
//! - `d_train_acc`, `d_heldout_acc`: the share of each set with D(x) > 0;
//! - `d_gap`: their difference (train − held-out), the signature itself;
//! - `d_train_logit`, `d_heldout_logit`: D's mean output on each.
//!
//! Only a discriminator that takes an image (and its label) and gives one logit per image is
//! measured; others (BiGAN's joint D, BEGAN's autoencoder) are skipped.
//!
//! D runs in eval mode without autograd (batch-norm running statistics, no spectral-norm power
//! step), so measuring never changes the model: a run is the same with or without it.
use tch::{Device, Kind, Tensor};

use super::host::forward;
use super::Net;

/// The discriminator's network name; architectures without one are not measured.
const DISCRIMINATOR: &str = "discriminator";

/// One side's share of D(x) > 0 and mean D(x), over `images` (uint8) in batches.
fn side(
    nets: &mut [Net],
    architecture: &str,
    images: &Tensor,
    labels: Option<&Tensor>,
    batch_size: i64,
    device: Device,
) -> Option<(f64, f64)> {
    let n = images.size()[0];
    let (mut above, mut sum) = (0.0, 0.0);
    let mut start = 0;
    while start < n {
        let len = batch_size.max(1).min(n - start);
        let x = crate::data::to_unit_range(&images.narrow(0, start, len).to_device(device));
        let mut inputs = vec![x];
        if let Some(y) = labels {
            inputs.push(y.narrow(0, start, len).to_device(device));
        }
        // A discriminator that takes other inputs (BiGAN's joint (x, z)) has no such signature:
        // it is skipped, not an error.
        let out = match tch::no_grad(|| forward(nets, architecture, DISCRIMINATOR, &inputs, false)) {
            Ok(out) => out,
            Err(e) => {
                tracing::debug!("D's overfitting signature skipped: {e}");
                return None;
            }
        };
        // Only a D with one logit per image has this signature (BEGAN's D is an autoencoder).
        let logits = out.first().filter(|l| l.numel() == len as usize)?;
        let logits = logits.to_kind(Kind::Double).view([-1]);
        above += logits.gt(0.0).sum(Kind::Double).double_value(&[]);
        sum += logits.sum(Kind::Double).double_value(&[]);
        start += len;
    }
    (n > 0).then(|| (above / n as f64, sum / n as f64))
}

/// The signature on the first `count` images of the training set and of the held-out set;
/// empty when the architecture has no single-logit discriminator or `count` is 0.
#[allow(clippy::too_many_arguments)]
pub(super) fn measure(
    nets: &mut [Net],
    architecture: &str,
    count: i64,
    (train, train_labels): (&Tensor, Option<&Tensor>),
    (heldout, heldout_labels): (&Tensor, Option<&Tensor>),
    conditional: bool,
    batch_size: i64,
    device: Device,
) -> Vec<(String, f64, bool)> {
    if count < 1 || !nets.iter().any(|n| n.name == DISCRIMINATOR) || train.dim() != 4 {
        return Vec::new();
    }
    let first = |x: &Tensor, y: Option<&Tensor>| {
        let n = count.min(x.size()[0]);
        (x.narrow(0, 0, n), y.filter(|_| conditional).map(|y| y.narrow(0, 0, n)))
    };
    let (tx, ty) = first(train, train_labels);
    let (hx, hy) = first(heldout, heldout_labels);
    let (Some((train_acc, train_logit)), Some((heldout_acc, heldout_logit))) = (
        side(nets, architecture, &tx, ty.as_ref(), batch_size, device),
        side(nets, architecture, &hx, hy.as_ref(), batch_size, device),
    ) else {
        return Vec::new();
    };
    vec![
        ("overfit/d_train_acc".into(), train_acc, false),
        ("overfit/d_heldout_acc".into(), heldout_acc, true),
        ("overfit/d_gap".into(), train_acc - heldout_acc, false),
        ("overfit/d_train_logit".into(), train_logit, false),
        ("overfit/d_heldout_logit".into(), heldout_logit, true),
    ]
}
