//! `cas`: the Classification Accuracy Score (Ravuri & Vinyals, NeurIPS 2019). A classifier is
//! trained on generated, labelled images only and tested on real held-out images; the same
//! classifier trained on as many real images gives the reference accuracy. A conditional
//! generator whose samples teach a classifier what real data would has `cas/ratio` near 1.
//!
//! Protocol (recorded by `protocol()`): the reference images the core feeds (the `test` split
//! by default) are cut in two halves: the first trains the real-data classifier, the second is
//! the held-out test set of both classifiers. The classifier is a fixed small CNN
//! ([`Classifier`]): conv 3×3 (32) → ReLU → max-pool 2 → conv 3×3 (64) → ReLU → max-pool 2 →
//! adaptive average pool 4×4 → linear 128 → ReLU → linear (classes); inputs scaled to [-1, 1].
//! Adam (lr `lr`, β = (0.9, 0.999)), `epochs` passes over its training set in batches of
//! `batch_size`, reshuffled each epoch. Training seeds libtorch's generator with `seed` first
//! (the trainer reseeds before each of its own phases, so the run's draws are unaffected), so
//! the same images give the same accuracies. The real-data classifier and its accuracy depend
//! only on the reference set and this protocol, and are cached per both (see `reference`).
//!
//! `cas/label_acc` turns the real-data classifier on the samples: the share classified as the
//! label they were generated for (the "GAN-test" accuracy of Shmelkov et al. 2018; CGAN's
//! class-fidelity check).
//!
//! **Augmentation arm** (`augment_per_class = K > 0`): does adding samples to the real training
//! data help? The core feeds this metric the run's own training set (interface 2.4: the subset
//! `data.fraction` selects, the images the generator saw). The classifier is trained on it alone,
//! and on it plus the first K samples of each class, each for `augment_steps` optimizer steps
//! (the same for both arms, so a gain comes from the data, not from longer training), with
//! `augment_seeds` classifier seeds (`seed`, `seed + 1`, ...), and both are tested on the same
//! held-out half of the reference set. It reports `cas/augment/real_acc`, `cas/augment/mixed_acc`
//! and `cas/augment/gain` (mixed − real, per seed), each the mean over the seeds with a `_std`
//! beside it.
use std::path::PathBuf;

use lab_plugin_api::tch::{self, nn, nn::ModuleT, nn::OptimizerConfig, Device, Kind, Tensor};
use lab_plugin_api::{config::check, BuildEnv, Error, MetricPlugin, Result, Value};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `[eval.config.cas]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CasConfig {
    pub epochs: i64,
    pub batch_size: i64,
    pub lr: f64,
    pub seed: u64,
    /// The augmentation arm's K: samples per class added to the training set (0: no arm).
    pub augment_per_class: i64,
    /// Optimizer steps of each augmentation-arm classifier.
    pub augment_steps: i64,
    /// Classifier seeds the augmentation arm averages over.
    pub augment_seeds: i64,
}

impl Default for CasConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            seed: 0,
            augment_per_class: 0,
            augment_steps: 1000,
            augment_seeds: 3,
        }
    }
}

/// The fixed CNN of the protocol.
#[derive(Debug)]
pub struct Classifier {
    net: nn::SequentialT,
}

impl Classifier {
    pub fn new(p: &nn::Path, channels: i64, classes: i64) -> Self {
        let conv = |c| nn::ConvConfig { padding: 1, ..c };
        let net = nn::seq_t()
            .add(nn::conv2d(p / "conv1", channels, 32, 3, conv(Default::default())))
            .add_fn(|x| x.relu().max_pool2d_default(2))
            .add(nn::conv2d(p / "conv2", 32, 64, 3, conv(Default::default())))
            .add_fn(|x| x.relu().max_pool2d_default(2).adaptive_avg_pool2d([4, 4]).flatten(1, -1))
            .add(nn::linear(p / "fc1", 64 * 16, 128, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(p / "fc2", 128, classes, Default::default()));
        Self { net }
    }

    /// Logits for uint8 images.
    pub fn logits(&self, images: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(&(images.to_kind(Kind::Float) / 127.5 - 1.0), train)
    }
}

/// Trains the protocol's classifier on `(x, y)` and returns its accuracy on `(test_x, test_y)`.
pub fn train_and_test(
    config: &CasConfig,
    classes: i64,
    x: &Tensor,
    y: &Tensor,
    test_x: &Tensor,
    test_y: &Tensor,
) -> f64 {
    let (_vs, net) = train(config, classes, x, y);
    accuracy(&net, test_x, test_y)
}

/// The protocol's classifier, trained on `(x, y)` (uint8 images) for `config.epochs` epochs,
/// with the store of its weights.
pub fn train(config: &CasConfig, classes: i64, x: &Tensor, y: &Tensor) -> (nn::VarStore, Classifier) {
    let n = x.size()[0];
    let steps_per_epoch = (n + config.batch_size - 1) / config.batch_size.max(1);
    train_steps(config, config.seed, classes, x, y, config.epochs * steps_per_epoch)
}

/// The protocol's classifier trained for `steps` optimizer steps from seed `seed`: batches in a
/// fresh random order each pass over the data (the last batch of a pass may be short).
fn train_steps(
    config: &CasConfig,
    seed: u64,
    classes: i64,
    x: &Tensor,
    y: &Tensor,
    steps: i64,
) -> (nn::VarStore, Classifier) {
    tch::manual_seed(seed as i64);
    let device = x.device();
    let vs = nn::VarStore::new(device);
    let net = Classifier::new(&vs.root(), x.size()[1], classes);
    let mut opt = nn::Adam::default().build(&vs, config.lr).expect("Adam over a VarStore");
    let n = x.size()[0];
    let mut taken = 0;
    while taken < steps && n > 0 {
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let mut start = 0;
        while start < n && taken < steps {
            let len = config.batch_size.min(n - start);
            let idx = order.narrow(0, start, len);
            let loss = net.logits(&x.index_select(0, &idx), true).cross_entropy_for_logits(&y.index_select(0, &idx));
            opt.backward_step(&loss);
            start += len;
            taken += 1;
        }
    }
    (vs, net)
}

/// The first `per_class` images of each class in `(x, y)`, class by class; an error names the
/// first class with fewer.
fn first_per_class(x: &Tensor, y: &Tensor, classes: i64, per_class: i64) -> Result<(Tensor, Tensor)> {
    let mut picked = Vec::new();
    for class in 0..classes {
        let idx = y.eq(class).nonzero().view([-1]);
        let have = idx.size()[0];
        if have < per_class {
            return Err(Error::new(format!(
                "cas: augment_per_class = {per_class} needs {per_class} samples of each class, but class {class} has {have}; \
                 raise eval.num_samples to at least {} (samples are labelled class by class in turn) or lower augment_per_class",
                per_class * classes
            )));
        }
        picked.push(idx.narrow(0, 0, per_class));
    }
    let idx = Tensor::cat(&picked, 0);
    Ok((x.index_select(0, &idx), y.index_select(0, &idx)))
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The share of `(test_x, test_y)` that `net` classifies right.
pub fn accuracy(net: &Classifier, test_x: &Tensor, test_y: &Tensor) -> f64 {
    tch::no_grad(|| {
        let mut correct = 0i64;
        let m = test_x.size()[0];
        let mut start = 0;
        while start < m {
            let len = 500.min(m - start);
            let predicted = net.logits(&test_x.narrow(0, start, len), false).argmax(-1, false);
            correct += predicted.eq_tensor(&test_y.narrow(0, start, len)).sum(Kind::Int64).int64_value(&[]);
            start += len;
        }
        correct as f64 / m.max(1) as f64
    })
}

/// Labelled batches of one side.
#[derive(Debug, Default)]
struct Side {
    images: Vec<Tensor>,
    labels: Vec<Tensor>,
    unlabelled: bool,
}

impl Side {
    fn push(&mut self, images: &Tensor, labels: Option<&Tensor>) {
        match labels {
            Some(y) => {
                self.images.push(images.detach());
                self.labels.push(y.to_kind(Kind::Int64).to_device(images.device()));
            }
            None => self.unlabelled = true,
        }
    }

    fn all(&self) -> Option<(Tensor, Tensor)> {
        (!self.images.is_empty()).then(|| (Tensor::cat(&self.images, 0), Tensor::cat(&self.labels, 0)))
    }
}

/// The `cas` metric.
#[derive(Debug)]
pub struct Cas {
    config: CasConfig,
    classes: i64,
    device: Device,
    real: Side,
    fake: Side,
    /// The run's training set, fed once when the augmentation arm is on (kept across resets).
    training: Side,
    /// Where the real-data accuracy of this reference set and protocol is cached.
    cache: Option<PathBuf>,
}

impl Cas {
    fn protocol_json(&self) -> serde_json::Value {
        json!({
            "metric": "cas",
            "classifier": "conv3x3(32)-relu-maxpool2-conv3x3(64)-relu-maxpool2-avgpool4x4-fc128-relu-fc(classes)",
            "optimizer": "adam", "lr": self.config.lr, "betas": [0.9, 0.999],
            "epochs": self.config.epochs, "batch_size": self.config.batch_size, "seed": self.config.seed,
            "split": "reference set: first half trains the real-data classifier, second half tests both",
        })
    }

    /// [`Self::protocol_json`] with the augmentation arm's settings when it is on (they do not
    /// touch the cached real-data classifier, so they stay out of its cache key).
    fn full_protocol_json(&self) -> serde_json::Value {
        let mut protocol = self.protocol_json();
        if self.config.augment_per_class > 0 {
            protocol["augment"] = json!({
                "per_class": self.config.augment_per_class, "steps": self.config.augment_steps,
                "seeds": self.config.augment_seeds,
                "arms": "the run's training set alone, and with the first per_class samples of each class; both tested on the reference set's second half",
            });
        }
        protocol
    }

    /// The augmentation arm's values (see the module's documentation).
    fn augmentation(&self, fake_x: &Tensor, fake_y: &Tensor, test_x: &Tensor, test_y: &Tensor) -> Result<Vec<Value>> {
        let (train_x, train_y) = match (self.training.all(), self.training.unlabelled) {
            (Some(all), false) => all,
            _ => {
                return Err(Error::new(
                    "cas: augment_per_class needs the labelled training set, which the core feeds from interface 2.4 on; this data has no labels or the core fed none",
                ))
            }
        };
        let (synthetic_x, synthetic_y) = first_per_class(fake_x, fake_y, self.classes, self.config.augment_per_class)?;
        let mixed_x = Tensor::cat(&[&train_x, &synthetic_x], 0);
        let mixed_y = Tensor::cat(&[&train_y, &synthetic_y], 0);
        let (mut real, mut mixed, mut gain) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..self.config.augment_seeds as u64 {
            let seed = self.config.seed + k;
            let steps = self.config.augment_steps;
            let (_vs, net) = train_steps(&self.config, seed, self.classes, &train_x, &train_y, steps);
            let real_acc = accuracy(&net, test_x, test_y);
            let (_vs, net) = train_steps(&self.config, seed, self.classes, &mixed_x, &mixed_y, steps);
            let mixed_acc = accuracy(&net, test_x, test_y);
            real.push(real_acc);
            mixed.push(mixed_acc);
            gain.push(mixed_acc - real_acc);
        }
        let mut values = Vec::new();
        for (name, series) in [("real_acc", &real), ("mixed_acc", &mixed), ("gain", &gain)] {
            let (mean, std) = mean_std(series);
            values.push(Value::higher(format!("cas/augment/{name}"), mean));
            values.push(Value::lower(format!("cas/augment/{name}_std"), std));
        }
        values.push(Value::higher("cas/augment/train_count", train_x.size()[0] as f64));
        Ok(values)
    }
}

impl MetricPlugin for Cas {
    const NAME: &'static str = "cas";
    const DESCRIPTION: &'static str = "Classification Accuracy Score (Ravuri & Vinyals 2019): a classifier trained on labelled samples, tested on real data";
    type Config = CasConfig;

    fn create(config: CasConfig, env: BuildEnv) -> Result<Self> {
        check::positive("epochs", config.epochs)?;
        check::positive("batch_size", config.batch_size)?;
        if config.augment_per_class < 0 {
            return Err(Error::config(
                "augment_per_class",
                format!(
                    "expected 0 (no augmentation arm) or a number of samples per class, found {}",
                    config.augment_per_class
                ),
            ));
        }
        check::positive("augment_steps", config.augment_steps)?;
        check::positive("augment_seeds", config.augment_seeds)?;
        if !(config.lr.is_finite() && config.lr > 0.0) {
            return Err(Error::config("lr", format!("expected a positive learning rate, found {}", config.lr)));
        }
        if env.data.num_classes < 2 {
            return Err(Error::new("cas needs a labelled dataset with at least 2 classes and a class-conditional model; this data has no classes"));
        }
        Ok(Self {
            config,
            classes: env.data.num_classes,
            device: env.device(),
            real: Side::default(),
            fake: Side::default(),
            training: Side::default(),
            cache: None,
        })
    }

    fn reference(&mut self, id: &str, cache_dir: &std::path::Path) -> Result<()> {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.protocol_json().to_string().as_bytes());
        let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.cache = Some(cache_dir.join(format!("cas-{id}-{key}.json")));
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        self.real = Side::default();
        self.fake = Side::default();
        Ok(())
    }

    fn update(&mut self, images: &Tensor, fake: bool) -> Result<()> {
        self.update_labelled(images, None, fake)
    }

    fn update_labelled(&mut self, images: &Tensor, labels: Option<&Tensor>, fake: bool) -> Result<()> {
        if fake { &mut self.fake } else { &mut self.real }.push(&images.to_device(self.device), labels);
        Ok(())
    }

    fn wants_training_set(&self) -> bool {
        self.config.augment_per_class > 0
    }

    fn update_training(&mut self, images: &Tensor, labels: Option<&Tensor>) -> Result<()> {
        self.training.push(&images.to_device(self.device), labels);
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<Value>> {
        let (fake_x, fake_y) = match (self.fake.all(), self.fake.unlabelled) {
            (Some(all), false) => all,
            _ => {
                return Err(Error::new(
                    "cas needs labelled samples: a class-conditional generator (its samples came without labels)",
                ))
            }
        };
        let (real_x, real_y) = match (self.real.all(), self.real.unlabelled) {
            (Some(all), false) => all,
            _ => return Err(Error::new("cas needs labelled real images: the reference set has no labels")),
        };
        let half = real_x.size()[0] / 2;
        if half < 1 {
            return Err(Error::new(
                "cas needs at least 2 reference images (half train the real classifier, half test)",
            ));
        }
        let (test_x, test_y) =
            (real_x.narrow(0, half, real_x.size()[0] - half), real_y.narrow(0, half, real_y.size()[0] - half));
        let (real_train_x, real_train_y) = (real_x.narrow(0, 0, half), real_y.narrow(0, 0, half));
        let weights = self.cache.as_ref().map(|p| p.with_extension("safetensors"));
        let real_net = match weights.as_ref().filter(|w| w.exists()) {
            Some(w) => {
                let mut vs = nn::VarStore::new(self.device);
                let net = Classifier::new(&vs.root(), real_x.size()[1], self.classes);
                vs.load(w).map_err(|e| {
                    Error::new(format!(
                        "cas: cannot read its cached classifier {}: {e}; delete the file to retrain",
                        w.display()
                    ))
                })?;
                net
            }
            None => {
                let (vs, net) = train(&self.config, self.classes, &real_train_x, &real_train_y);
                if let Some(w) = &weights {
                    let _ = std::fs::create_dir_all(w.parent().unwrap_or(std::path::Path::new(".")));
                    let _ = vs.save(w);
                }
                net
            }
        };
        let cached = self
            .cache
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let real_acc = match cached.and_then(|v| v["real_acc"].as_f64()) {
            Some(acc) => acc,
            None => {
                let acc = accuracy(&real_net, &test_x, &test_y);
                if let Some(path) = &self.cache {
                    let _ = std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")));
                    let _ =
                        std::fs::write(path, json!({ "real_acc": acc, "protocol": self.protocol_json() }).to_string());
                }
                acc
            }
        };
        let label_acc = accuracy(&real_net, &fake_x, &fake_y);
        let acc = train_and_test(&self.config, self.classes, &fake_x, &fake_y, &test_x, &test_y);
        let mut values = vec![
            Value::higher("cas/acc", acc),
            Value::higher("cas/real_acc", real_acc),
            Value::higher("cas/ratio", acc / real_acc.max(1e-12)),
            Value::higher("cas/label_acc", label_acc),
        ];
        if self.config.augment_per_class > 0 {
            values.extend(self.augmentation(&fake_x, &fake_y, &test_x, &test_y)?);
        }
        Ok(values)
    }

    fn protocol(&self) -> String {
        self.full_protocol_json().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::DataSpec;
    use lab_plugin_testkit::{metric, rng_lock};

    const DATA: DataSpec = DataSpec { channels: 1, height: 8, width: 8, num_classes: 3 };
    const FAST: &str = "epochs = 8\nbatch_size = 32\nlr = 0.003";

    /// `n` uint8 8×8 images of 3 classes: class k is a bright band on rows 2k..2k+3 over noise.
    fn bands(n: i64) -> (Tensor, Tensor) {
        let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(3);
        let rows = Tensor::arange(8, (Kind::Int64, Device::Cpu)).view([1, 8]);
        let start = (&y * 2).view([n, 1]);
        let band = rows.ge_tensor(&start).logical_and(&rows.lt_tensor(&(&start + 3))).to_kind(Kind::Float);
        let x = band.view([n, 1, 8, 1]).expand([n, 1, 8, 8], false) * 150.0
            + Tensor::rand([n, 1, 8, 8], (Kind::Float, Device::Cpu)) * 100.0;
        (x.clamp(0.0, 255.0).to_kind(Kind::Uint8), y)
    }

    fn cas(real: (Tensor, Tensor), fake: (Tensor, Option<Tensor>)) -> Result<Vec<Value>> {
        let mut m = metric::create::<Cas>(FAST, DATA).unwrap();
        metric::evaluate_labelled(&mut m, &[(real.0, Some(real.1))], &[fake])
    }

    #[test]
    fn real_images_as_samples_score_like_real_data() {
        let _rng = rng_lock();
        tch::manual_seed(0);
        let (real, fake) = (bands(300), bands(300));
        let v = cas(real, (fake.0, Some(fake.1))).unwrap();
        let (acc, real_acc) = (metric::value(&v, "cas/acc"), metric::value(&v, "cas/real_acc"));
        assert!(real_acc > 0.9 && acc > 0.9, "acc {acc}, real {real_acc}");
        assert!(metric::value(&v, "cas/label_acc") > 0.9, "real images keep their labels");
        assert!((metric::value(&v, "cas/ratio") - acc / real_acc).abs() < 1e-12);
    }

    #[test]
    fn wrong_labels_score_far_below_real_data() {
        let _rng = rng_lock();
        tch::manual_seed(1);
        let (real, fake) = (bands(300), bands(300));
        // Every label moved to the next class: the classifier learns the wrong map.
        let shifted = (&fake.1 + 1).remainder(3);
        let v = cas((real.0.shallow_clone(), real.1.shallow_clone()), (fake.0.shallow_clone(), Some(shifted))).unwrap();
        let acc = metric::value(&v, "cas/acc");
        assert!(acc < 0.1, "shifted labels: {acc}");
        // The real-data classifier sees the images' true classes, not their (wrong) labels.
        assert!(metric::value(&v, "cas/label_acc") < 0.1, "shifted labels: {}", metric::value(&v, "cas/label_acc"));
        // Shuffled labels carry (almost) no information: with 300 images the per-class label
        // counts still lean a little, so the score is noisy, but far below the real 1.0.
        let shuffled = fake.1.index_select(0, &Tensor::randperm(300, (Kind::Int64, Device::Cpu)));
        let acc = metric::value(&cas(real, (fake.0, Some(shuffled))).unwrap(), "cas/acc");
        assert!(acc < 0.75, "shuffled labels: {acc}");
    }

    #[test]
    fn unlabelled_samples_and_unlabelled_data_are_refused() {
        let _rng = rng_lock();
        let (real, fake) = (bands(30), bands(30));
        let err = cas(real, (fake.0, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cas needs labelled samples: a class-conditional generator (its samples came without labels)"
        );
        let err = metric::create::<Cas>("", DataSpec { num_classes: 0, ..DATA }).err().unwrap();
        assert!(err.to_string().starts_with("cas needs a labelled dataset"), "{err}");
    }

    const AUGMENT: &str =
        "epochs = 8\nbatch_size = 32\nlr = 0.003\naugment_per_class = 60\naugment_steps = 60\naugment_seeds = 2";

    /// The augmentation arm on a training set of `n_train` band images, with samples `fake`.
    fn augmented(n_train: i64, fake: (Tensor, Tensor)) -> Result<Vec<Value>> {
        let mut m = metric::create::<Cas>(AUGMENT, DATA).unwrap();
        let (train_x, train_y) = bands(n_train);
        // Half the training images carry a wrong label: a small, noisy training set that good
        // samples can outvote.
        let noisy = Tensor::cat(
            &[
                (&train_y.narrow(0, 0, n_train / 2) + 1).remainder(3),
                train_y.narrow(0, n_train / 2, n_train - n_train / 2),
            ],
            0,
        );
        assert!(
            metric::feed_training_set(&mut m, &[(train_x, Some(noisy))]).unwrap(),
            "the arm asks for the training set"
        );
        let real = bands(300);
        metric::evaluate_labelled(&mut m, &[(real.0, Some(real.1))], &[(fake.0, Some(fake.1))])
    }

    #[test]
    fn good_samples_added_to_a_small_noisy_training_set_raise_its_accuracy() {
        let _rng = rng_lock();
        tch::manual_seed(2);
        let v = augmented(6, bands(240)).unwrap();
        let (real, mixed, gain) = (
            metric::value(&v, "cas/augment/real_acc"),
            metric::value(&v, "cas/augment/mixed_acc"),
            metric::value(&v, "cas/augment/gain"),
        );
        assert!(mixed > 0.9, "real + good samples: {mixed}");
        assert!(gain > 0.1 && (gain - (mixed - real)).abs() < 1e-12, "gain {gain}, real {real}, mixed {mixed}");
        assert_eq!(metric::value(&v, "cas/augment/train_count"), 6.0);
        assert!(metric::value(&v, "cas/augment/real_acc_std") >= 0.0);
    }

    #[test]
    fn mislabelled_samples_lower_it() {
        let _rng = rng_lock();
        tch::manual_seed(3);
        let (x, y) = bands(240);
        let v = augmented(60, (x, (y + 1).remainder(3))).unwrap();
        let gain = metric::value(&v, "cas/augment/gain");
        assert!(gain < -0.2, "samples whose labels name the next class: gain {gain}");
    }

    #[test]
    fn the_augmentation_arm_names_what_it_lacks() {
        let _rng = rng_lock();
        tch::manual_seed(4);
        // 90 samples are 30 per class, short of 60.
        let err = augmented(6, bands(90)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cas: augment_per_class = 60 needs 60 samples of each class, but class 0 has 30; raise eval.num_samples \
             to at least 180 (samples are labelled class by class in turn) or lower augment_per_class"
        );
        // Without the training set (a core before interface 2.4 never feeds it).
        let mut m = metric::create::<Cas>(AUGMENT, DATA).unwrap();
        let (real, fake) = (bands(300), bands(240));
        let err = metric::evaluate_labelled(&mut m, &[(real.0, Some(real.1))], &[(fake.0, Some(fake.1))]).unwrap_err();
        assert!(err.to_string().starts_with("cas: augment_per_class needs the labelled training set"), "{err}");
        // Off by default: the metric does not ask for the training set.
        let mut m = metric::create::<Cas>(FAST, DATA).unwrap();
        assert!(!metric::feed_training_set(&mut m, &[]).unwrap());
        let err = metric::create::<Cas>("augment_per_class = -1", DATA).err().unwrap();
        assert!(err.to_string().contains("augment_per_class"), "{err}");
    }

    #[test]
    fn the_real_data_accuracy_is_cached_per_reference_and_protocol() {
        let _rng = rng_lock();
        let dir = std::env::temp_dir().join(format!("lab-cas-cache-{}", std::process::id()));
        let mut m = metric::create::<Cas>(FAST, DATA).unwrap();
        m.reference("bands-test-300", &dir).unwrap();
        let (real, fake) = (bands(60), bands(60));
        let batches = (vec![(real.0, Some(real.1))], vec![(fake.0, Some(fake.1))]);
        let first = metric::evaluate_labelled(&mut m, &batches.0, &batches.1).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert_eq!(
            files.iter().map(|f| f.extension().unwrap().to_str().unwrap()).collect::<Vec<_>>(),
            ["json", "safetensors"]
        );
        let file = files[0].clone();
        assert!(file.file_name().unwrap().to_str().unwrap().starts_with("cas-bands-test-300-"));
        // A planted value proves the cache is read instead of retraining.
        std::fs::write(&file, r#"{"real_acc": 0.5}"#).unwrap();
        let second = metric::evaluate_labelled(&mut m, &batches.0, &batches.1).unwrap();
        assert_eq!(metric::value(&second, "cas/real_acc"), 0.5);
        assert_eq!(
            metric::value(&second, "cas/acc"),
            metric::value(&first, "cas/acc"),
            "seeded: the same images, the same accuracy"
        );
        assert_eq!(
            metric::value(&second, "cas/label_acc"),
            metric::value(&first, "cas/label_acc"),
            "the cached classifier is the trained one"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
