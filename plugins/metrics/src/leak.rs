//! `leak`: do generated images carry the augmentation's artefacts? When an augmentation reaches
//! only what D sees as real (classic dataset augmentation), G learns to reproduce it: the
//! DiffAugment paper (Zhao et al. 2020, §3.1) shows cutout squares and translation borders in
//! the samples. This metric counts those artefacts in generated and in real images and tests
//! whether the generated rate is higher.
//!
//! What it detects (both come from filling with zero in [-1, 1] pixels, which is 127.5 of 255:
//! DiffAugment's `translation` and `cutout`, and the `augment` pipeline's):
//! - a **cutout square**: a `k × k` window whose pixels are all within `tolerance` of `fill` in
//!   every channel, with `k = square × min(H, W)` rounded (7 px at 28, 8 at 32);
//! - a **translation border**: `border` or more whole rows or columns at one edge of the image,
//!   every pixel within `tolerance` of `fill`.
//!
//! An image more than `max_flat` of whose pixels are at the fill value is blank, not augmented
//! (an untrained generator's output is a flat grey): it counts as neither (`leak/blank_rate`
//! reports it). DiffAugment's cutout covers a quarter of the image and its translation at most
//! about another quarter, so the default 0.5 keeps every real artefact.
//!
//! The statistic is the two-proportion z-score of "the image has either artefact" between the
//! samples and the reference set (pooled standard error). It fires when `z > z_threshold` and
//! the samples' rate exceeds the real rate by more than `excess`. Values: `leak` (the
//! samples' rate), `leak/real_rate`, `leak/cutout_rate`, `leak/border_rate` and `leak/blank_rate` (the samples'),
//! `leak/z` and `leak/fired` (1 or 0). When it fires, the protocol carries a `warning`, which
//! the core prints once per run.
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{BuildEnv, Error, MetricPlugin, Result, Value};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `[eval.config.leak]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LeakConfig {
    /// The pixel value (of 255) an augmentation fills with: zero in [-1, 1] is 127.5.
    pub fill: f64,
    /// How far (of 255) a pixel may be from `fill` and still count as filled.
    pub tolerance: f64,
    /// The side of the smallest flat square counted as a cutout, as a share of the image side.
    pub square: f64,
    /// The fewest whole flat rows or columns at one edge counted as a translation border.
    pub border: i64,
    /// The z-score above which the detector fires.
    pub z_threshold: f64,
    /// How much the samples' rate must also exceed the real rate (an absolute share).
    pub excess: f64,
    /// The share of flat pixels above which an image is blank rather than augmented.
    pub max_flat: f64,
}

impl Default for LeakConfig {
    fn default() -> Self {
        Self { fill: 127.5, tolerance: 8.0, square: 0.25, border: 2, z_threshold: 4.0, excess: 0.05, max_flat: 0.5 }
    }
}

/// Counts of artefacts over one side's images.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    pub images: i64,
    pub cutout: i64,
    pub border: i64,
    /// Images with either artefact.
    pub any: i64,
    /// Images more than `max_flat` flat (counted as neither artefact).
    pub blank: i64,
}

impl Counts {
    fn rate(&self, count: i64) -> f64 {
        count as f64 / self.images.max(1) as f64
    }
}

/// Per-image flags `(cutout, border, blank)` for uint8 NCHW `images`, as bool tensors `[N]`;
/// a blank image is flagged as neither artefact.
pub fn artefacts(config: &LeakConfig, images: &Tensor) -> (Tensor, Tensor, Tensor) {
    let size = images.size();
    let (h, w) = (size[2], size[3]);
    // [N, 1, H, W]: 1 where every channel is within tolerance of the fill value.
    let flat =
        (images.to_kind(Kind::Float) - config.fill).abs().le(config.tolerance).all_dim(1, true).to_kind(Kind::Float);
    let k = ((config.square * h.min(w) as f64).round() as i64).clamp(1, h.min(w));
    // A window is a flat square when its mean is 1 (exactly: sums of 0/1 over k² ≤ 2²⁴ terms).
    let window_sums = flat.avg_pool2d([k, k], [1, 1], [0, 0], false, true, None::<i64>) * (k * k) as f64;
    let cutout = window_sums.ge((k * k) as f64 - 0.5).flatten(1, -1).any_dim(1, false);
    let b = config.border.clamp(1, h.min(w));
    let full_rows = flat.sum_dim_intlist(3, false, Kind::Float).ge(w as f64 - 0.5).squeeze_dim(1); // [N, H]
    let full_cols = flat.sum_dim_intlist(2, false, Kind::Float).ge(h as f64 - 0.5).squeeze_dim(1); // [N, W]
    let band = |lines: &Tensor, start: i64| lines.narrow(1, start, b).all_dim(1, false);
    let border = band(&full_rows, 0)
        .logical_or(&band(&full_rows, h - b))
        .logical_or(&band(&full_cols, 0))
        .logical_or(&band(&full_cols, w - b));
    let blank = flat.mean_dim(&[1i64, 2, 3][..], false, Kind::Float).gt(config.max_flat);
    let kept = blank.logical_not();
    (cutout.logical_and(&kept), border.logical_and(&kept), blank)
}

/// The two-proportion z-score of `a` over `b` (pooled standard error; 0 when both rates are 0 or 1).
pub fn z_score(a: &Counts, b: &Counts) -> f64 {
    let (na, nb) = (a.images.max(1) as f64, b.images.max(1) as f64);
    let pooled = (a.any + b.any) as f64 / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se > 0.0 {
        (a.rate(a.any) - b.rate(b.any)) / se
    } else {
        0.0
    }
}

/// The `leak` metric.
#[derive(Debug)]
pub struct Leak {
    config: LeakConfig,
    real: Counts,
    fake: Counts,
    /// The last evaluation's warning, when it fired.
    warning: Option<String>,
}

impl Counts {
    /// Adds the artefacts `config` finds in `images`.
    fn add(&mut self, config: &LeakConfig, images: &Tensor) {
        let (cutout, border, blank) = artefacts(config, images);
        let sum = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
        self.images += images.size()[0];
        self.cutout += sum(&cutout);
        self.border += sum(&border);
        self.any += sum(&cutout.logical_or(&border));
        self.blank += sum(&blank);
    }
}

impl MetricPlugin for Leak {
    const NAME: &'static str = "leak";
    const DESCRIPTION: &'static str =
        "augmentation-leak detector: cutout squares and translation borders in samples vs real images (z-test)";
    type Config = LeakConfig;

    fn create(config: LeakConfig, _env: BuildEnv) -> Result<Self> {
        if !(0.0..=255.0).contains(&config.fill) {
            return Err(Error::config("fill", format!("expected a pixel value in [0, 255], found {}", config.fill)));
        }
        if config.tolerance.is_nan() || config.tolerance < 0.0 {
            return Err(Error::config("tolerance", format!("expected 0 or more, found {}", config.tolerance)));
        }
        if !(config.square > 0.0 && config.square <= 1.0) {
            return Err(Error::config(
                "square",
                format!("expected a share of the image side in (0, 1], found {}", config.square),
            ));
        }
        lab_plugin_api::config::check::positive("border", config.border)?;
        if !(config.max_flat > 0.0 && config.max_flat <= 1.0) {
            return Err(Error::config(
                "max_flat",
                format!("expected a share of the image in (0, 1], found {}", config.max_flat),
            ));
        }
        if !config.z_threshold.is_finite() || !(0.0..1.0).contains(&config.excess) {
            return Err(Error::config(
                "z_threshold",
                format!(
                    "expected a finite z_threshold and an excess in [0, 1), found {} and {}",
                    config.z_threshold, config.excess
                ),
            ));
        }
        Ok(Self { config, real: Counts::default(), fake: Counts::default(), warning: None })
    }

    fn reset(&mut self) -> Result<()> {
        self.real = Counts::default();
        self.fake = Counts::default();
        Ok(())
    }

    fn update(&mut self, images: &Tensor, fake: bool) -> Result<()> {
        let counts = if fake { &mut self.fake } else { &mut self.real };
        counts.add(&self.config, images);
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<Value>> {
        if self.fake.images == 0 || self.real.images == 0 {
            return Err(Error::new("leak needs both generated and real images"));
        }
        let (rate, real_rate) = (self.fake.rate(self.fake.any), self.real.rate(self.real.any));
        let z = z_score(&self.fake, &self.real);
        let fired = z > self.config.z_threshold && rate - real_rate > self.config.excess;
        self.warning = fired.then(|| {
            format!(
                "the samples carry the augmentation's artefacts: {:.0}% have a flat grey cutout square or border \
                 against {:.0}% of real images (z = {z:.1}); the augmentation is leaking into the generator. \
                 Augment what D sees of both reals and fakes (`augment.apply = \"both\"`, DiffAugment or ADA), \
                 not the reals alone",
                100.0 * rate,
                100.0 * real_rate
            )
        });
        Ok(vec![
            Value::lower("leak", rate),
            Value::lower("leak/real_rate", real_rate),
            Value::lower("leak/cutout_rate", self.fake.rate(self.fake.cutout)),
            Value::lower("leak/border_rate", self.fake.rate(self.fake.border)),
            Value::lower("leak/blank_rate", self.fake.rate(self.fake.blank)),
            Value::lower("leak/z", z),
            Value::lower("leak/fired", if fired { 1.0 } else { 0.0 }),
        ])
    }

    fn protocol(&self) -> String {
        let c = &self.config;
        let mut protocol = json!({
            "metric": "leak",
            "detects": "cutout squares (a flat k×k window, k = square × side) and translation borders (border or more flat lines at an edge)",
            "fill": c.fill, "tolerance": c.tolerance, "square": c.square, "border": c.border,
            "statistic": "two-proportion z-score of the share of images with either artefact, samples vs reference",
            "z_threshold": c.z_threshold, "excess": c.excess, "max_flat": c.max_flat,
        });
        if let Some(warning) = &self.warning {
            protocol["warning"] = warning.clone().into();
        }
        protocol.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::Device;
    use lab_plugin_api::DataSpec;
    use lab_plugin_testkit::{metric, rng_lock};

    const DATA: DataSpec = DataSpec { channels: 1, height: 28, width: 28, num_classes: 0 };

    /// `n` Fashion-MNIST-like images: a black background with a bright, noisy blob.
    fn garments(n: i64) -> Tensor {
        let x = Tensor::zeros([n, 1, 28, 28], (Kind::Float, Device::Cpu));
        let blob = Tensor::rand([n, 1, 18, 14], (Kind::Float, Device::Cpu)) * 200.0 + 40.0;
        x.narrow(2, 5, 18).narrow(3, 7, 14).copy_(&blob);
        x.to_kind(Kind::Uint8)
    }

    /// Pastes a flat grey `side × side` square at a random place into the first `count` images.
    fn paste_squares(x: &Tensor, count: i64, side: i64) -> Tensor {
        let out = x.copy();
        for i in 0..count {
            let (top, left) = ((i * 7) % (28 - side + 1), (i * 11) % (28 - side + 1));
            let _ = out.get(i).narrow(1, top, side).narrow(2, left, side).fill_(128);
        }
        out
    }

    /// Shifts the first `count` images down by `shift` rows, filling the top with grey.
    fn translate(x: &Tensor, count: i64, shift: i64) -> Tensor {
        let out = x.copy();
        for i in 0..count {
            let moved = x.get(i).narrow(1, 0, 28 - shift).copy();
            out.get(i).narrow(1, shift, 28 - shift).copy_(&moved);
            let _ = out.get(i).narrow(1, 0, shift).fill_(127);
        }
        out
    }

    fn evaluate(real: Tensor, fake: Tensor) -> Vec<Value> {
        let mut m = metric::create::<Leak>("", DATA).unwrap();
        metric::evaluate(&mut m, &[real], &[fake]).unwrap()
    }

    #[test]
    fn squares_pasted_at_a_known_rate_are_counted_exactly_and_fire() {
        let _rng = rng_lock();
        lab_plugin_api::tch::manual_seed(0);
        let (real, fake) = (garments(400), paste_squares(&garments(400), 120, 10));
        let v = evaluate(real, fake);
        assert_eq!(metric::value(&v, "leak/cutout_rate"), 0.3);
        assert_eq!(metric::value(&v, "leak"), 0.3);
        assert_eq!(metric::value(&v, "leak/real_rate"), 0.0);
        assert_eq!(metric::value(&v, "leak/fired"), 1.0);
        // Pooled p = 0.15: z = 0.3 / sqrt(0.15 · 0.85 · 2/400) = 11.88.
        assert!((metric::value(&v, "leak/z") - 0.3 / (0.15f64 * 0.85 * 2.0 / 400.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn translation_borders_are_counted_and_squares_below_the_size_are_not() {
        let _rng = rng_lock();
        lab_plugin_api::tch::manual_seed(1);
        let fake = translate(&garments(200), 50, 3);
        let v = evaluate(garments(200), fake);
        assert_eq!(metric::value(&v, "leak/border_rate"), 0.25);
        assert_eq!(metric::value(&v, "leak/fired"), 1.0);
        // 6 px is below 0.25 × 28 = 7 px; a 1-row band is below `border = 2`.
        let v = evaluate(garments(200), translate(&paste_squares(&garments(200), 100, 6), 100, 1));
        assert_eq!((metric::value(&v, "leak"), metric::value(&v, "leak/fired")), (0.0, 0.0));
    }

    #[test]
    fn a_blank_grey_image_is_not_an_artefact() {
        let _rng = rng_lock();
        let grey = Tensor::full([50, 1, 28, 28], 127, (Kind::Uint8, Device::Cpu));
        let v = evaluate(garments(50), grey);
        assert_eq!((metric::value(&v, "leak"), metric::value(&v, "leak/blank_rate")), (0.0, 1.0));
        assert_eq!(metric::value(&v, "leak/fired"), 0.0);
    }

    #[test]
    fn clean_samples_and_a_small_excess_stay_quiet() {
        let _rng = rng_lock();
        lab_plugin_api::tch::manual_seed(2);
        let v = evaluate(garments(300), garments(300));
        assert_eq!((metric::value(&v, "leak"), metric::value(&v, "leak/z")), (0.0, 0.0));
        assert_eq!(metric::value(&v, "leak/fired"), 0.0);
        // Real images with squares at the same rate as the samples: no excess, no alarm.
        let v = evaluate(paste_squares(&garments(300), 60, 12), paste_squares(&garments(300), 63, 12));
        assert_eq!(metric::value(&v, "leak/fired"), 0.0);
        assert!(metric::value(&v, "leak/z") < 1.0);
    }

    #[test]
    fn the_protocol_warns_only_after_an_evaluation_that_fired() {
        let _rng = rng_lock();
        lab_plugin_api::tch::manual_seed(3);
        let mut m = metric::create::<Leak>("", DATA).unwrap();
        metric::evaluate(&mut m, &[garments(100)], &[paste_squares(&garments(100), 60, 14)]).unwrap();
        let p: serde_json::Value = serde_json::from_str(&m.protocol().unwrap()).unwrap();
        let warning = p["warning"].as_str().unwrap();
        assert!(warning.starts_with("the samples carry the augmentation's artefacts: 60% have"), "{warning}");
        metric::evaluate(&mut m, &[garments(100)], &[garments(100)]).unwrap();
        let p: serde_json::Value = serde_json::from_str(&m.protocol().unwrap()).unwrap();
        assert!(p.get("warning").is_none(), "{p}");
        let err = metric::create::<Leak>("square = 0.0", DATA).err().unwrap();
        assert!(err.to_string().contains("square"), "{err}");
    }
}
