//! What `cyclegan` measures about itself at evaluation steps, on the evaluation images of both
//! domains (`reference` for A, `reference_b` for B):
//! - `cycle/l1_aba`, `cycle/l1_bab`: mean |G_BA(G_AB(a)) − a| and |G_AB(G_BA(b)) − b| in [0, 1]
//!   pixel units;
//! - `translation/domain_acc_ab`, `translation/domain_acc_ba`: the share of G_AB(a) a domain
//!   classifier calls B, and of G_BA(b) it calls A ([`crate::classifier`], trained once on the
//!   training images of both domains);
//! - `translation/domain_classifier_acc`: that classifier's accuracy on the real evaluation
//!   images of both domains, which says whether the two above mean anything;
//! - with `features` set, `translation/fid_ab` (G_AB(a) against real B) and
//!   `translation/fid_ba` (G_BA(b) against real A) in that network's features
//!   ([`lab_features::SetFid`], the `fid` metric's distance).
use lab_features::SetFid;
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_REFERENCE_B, SPLIT_TRAIN, SPLIT_TRAIN_B};
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{Error, EvalCtx, Result, Value};

use crate::classifier::{shrink, DomainClassifier};
use crate::config::CycleGanConfig;
use crate::model::{CycleGan, GENERATOR_AB, GENERATOR_BA};

/// Images per network call.
const BATCH: i64 = 50;

pub const L1_ABA: &str = "cycle/l1_aba";
pub const L1_BAB: &str = "cycle/l1_bab";
pub const DOMAIN_ACC_AB: &str = "translation/domain_acc_ab";
pub const DOMAIN_ACC_BA: &str = "translation/domain_acc_ba";
pub const CLASSIFIER_ACC: &str = "translation/domain_classifier_acc";
pub const FID_AB: &str = "translation/fid_ab";
pub const FID_BA: &str = "translation/fid_ba";

/// The names `evaluate` returns for `config`, in order.
pub fn measure_names(config: &CycleGanConfig) -> Vec<String> {
    if !config.measure {
        return Vec::new();
    }
    let mut names = vec![L1_ABA, L1_BAB, DOMAIN_ACC_AB, DOMAIN_ACC_BA, CLASSIFIER_ACC];
    if !config.features.is_empty() {
        names.extend([FID_AB, FID_BA]);
    }
    names.into_iter().map(String::from).collect()
}

/// Running sums over one direction's pass.
#[derive(Default)]
pub struct DirectionSums {
    /// Σ|rec − x| in [0, 1] pixel units, and the values summed.
    pub l1_sum: f64,
    pub values: f64,
    /// Translations the classifier assigns to the target domain, and translations made.
    pub called_target: f64,
    /// Real source images the classifier assigns to their own domain.
    pub real_called_source: f64,
    pub images: f64,
}

impl DirectionSums {
    /// Adds one batch: sources `x`, their translations and reconstructions, and the
    /// classifier's verdicts (1 = domain B) on the translations and on `x`.
    pub fn add(&mut self, x: &Tensor, rec: &Tensor, says_b_translated: &Tensor, says_b_real: &Tensor, to_b: bool) {
        let x = x.to_kind(Kind::Double);
        self.l1_sum += ((rec.to_kind(Kind::Double) - &x).abs() * 0.5).sum(Kind::Double).double_value(&[]);
        self.values += x.numel() as f64;
        let (translated_b, real_b) =
            (says_b_translated.sum(Kind::Double).double_value(&[]), says_b_real.sum(Kind::Double).double_value(&[]));
        let n = x.size()[0] as f64;
        // A → B: translations should be called B, real A images A; B → A the other way round.
        if to_b {
            self.called_target += translated_b;
            self.real_called_source += n - real_b;
        } else {
            self.called_target += n - translated_b;
            self.real_called_source += real_b;
        }
        self.images += n;
    }

    pub fn cycle_l1(&self) -> f64 {
        self.l1_sum / self.values.max(1.0)
    }

    pub fn domain_accuracy(&self) -> f64 {
        self.called_target / self.images.max(1.0)
    }
}

/// The images of `split` (up to `limit`, 0 = all) shrunk for the classifier, or why the split
/// is not there.
fn classifier_images(ctx: &EvalCtx<'_>, split: &str, limit: i64) -> Result<Tensor> {
    let mut parts = Vec::new();
    ctx.for_each_batch(split, 256, limit, |x, _| {
        parts.push(shrink(&x));
        Ok(())
    })
    .map_err(|e| missing_split(split, e))?;
    if parts.is_empty() {
        return Err(Error::new(format!("split `{split}` has no images to train the domain classifier on")));
    }
    Ok(Tensor::cat(&parts, 0))
}

fn missing_split(split: &str, e: Error) -> Error {
    e.context(format!(
        "cyclegan measures translations in both directions on the splits `{SPLIT_REFERENCE}`/`{SPLIT_TRAIN}` \
         (domain A) and `{SPLIT_REFERENCE_B}`/`{SPLIT_TRAIN_B}` (domain B), which two-domain data provide \
         (data.dataset = \"unpaired-folders\"); reading `{split}` failed (model.config.measure = false turns \
         these measures off)"
    ))
}

/// Runs one direction over `split`: translate with `forward`, back with `backward`, judge with
/// the classifier, and, with FIDs, add the translations to the set of their target domain's
/// FID (`fids.0`) and the real source images to the FID whose target this domain is (`fids.1`).
fn direction(
    ctx: &EvalCtx<'_>,
    split: &str,
    limit: i64,
    (forward, backward): (&str, &str),
    classifier: &DomainClassifier,
    mut fids: Option<(&mut SetFid, &mut SetFid)>,
) -> Result<DirectionSums> {
    let to_b = forward == GENERATOR_AB;
    let mut sums = DirectionSums::default();
    ctx.for_each_batch(split, BATCH, limit, |x, _| {
        let translated = ctx.run_network(forward, &[x.shallow_clone()])?.remove(0);
        let rec = ctx.run_network(backward, &[translated.shallow_clone()])?.remove(0);
        sums.add(&x, &rec, &classifier.says_b(&translated), &classifier.says_b(&x), to_b);
        if let Some((into_target, from_source)) = fids.as_mut() {
            into_target.add_generated(&translated)?;
            from_source.add_real(&x)?;
        }
        Ok(())
    })
    .map_err(|e| missing_split(split, e))?;
    if sums.images == 0.0 {
        return Err(Error::new(format!("split `{split}` has no images to measure translations on")));
    }
    Ok(sums)
}

/// The measures of [`crate::evaluation`].
pub fn evaluate(arch: &CycleGan, ctx: &EvalCtx<'_>) -> Result<Vec<Value>> {
    let config = &arch.config;
    if !config.measure {
        return Ok(Vec::new());
    }
    let mut cached = arch.classifier.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if cached.is_none() {
        let limit = config.classifier_images;
        let (a, b) = (classifier_images(ctx, SPLIT_TRAIN, limit)?, classifier_images(ctx, SPLIT_TRAIN_B, limit)?);
        *cached = Some(DomainClassifier::train(&a, &b, config.classifier_steps, a.device())?);
    }
    let classifier = cached.as_ref().expect("trained above");
    // G_AB(a) against real B, and G_BA(b) against real A.
    let mut fids = if config.features.is_empty() {
        None
    } else {
        let device = arch.env.device();
        Some((SetFid::load(&config.features, device)?, SetFid::load(&config.features, device)?))
    };
    let limit = config.eval_images;
    let (nets_ab, nets_ba) = ((GENERATOR_AB, GENERATOR_BA), (GENERATOR_BA, GENERATOR_AB));
    let ab = direction(ctx, SPLIT_REFERENCE, limit, nets_ab, classifier, fids.as_mut().map(|(ab, ba)| (ab, ba)))?;
    let ba = direction(ctx, SPLIT_REFERENCE_B, limit, nets_ba, classifier, fids.as_mut().map(|(ab, ba)| (ba, ab)))?;
    let classifier_acc = (ab.real_called_source + ba.real_called_source) / (ab.images + ba.images);
    let mut values = vec![
        Value::lower(L1_ABA, ab.cycle_l1()),
        Value::lower(L1_BAB, ba.cycle_l1()),
        Value::higher(DOMAIN_ACC_AB, ab.domain_accuracy()),
        Value::higher(DOMAIN_ACC_BA, ba.domain_accuracy()),
        Value::higher(CLASSIFIER_ACC, classifier_acc),
    ];
    if let Some((fid_ab, fid_ba)) = &fids {
        values.extend([Value::lower(FID_AB, fid_ab.distance()?), Value::lower(FID_BA, fid_ba.distance()?)]);
    }
    Ok(values)
}
