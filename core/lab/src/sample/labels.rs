//! Which class each exported image gets: `--labels balanced|uniform|<class>=<n>,...`.
use tch::{Device, Kind, Tensor};

/// The labels of an export, decided before any image is generated.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelPlan {
    /// An unconditional model: images only.
    Unlabelled { n: i64 },
    /// Class `i mod classes` for image `i`: equal counts, the first classes one more when `n`
    /// does not divide.
    Balanced { n: i64, classes: i64 },
    /// Classes drawn uniformly at random (seeded with the batch).
    Uniform { n: i64, classes: i64 },
    /// Exactly these counts per class, in class order.
    Counts { counts: Vec<(i64, i64)>, classes: i64 },
}

impl LabelPlan {
    /// Reads `--labels` (default `balanced`) and `--n` for a model with `classes` classes (0:
    /// unconditional).
    pub fn parse(spec: Option<&str>, n: Option<i64>, classes: i64) -> anyhow::Result<Self> {
        if let Some(n) = n {
            anyhow::ensure!(n > 0, "--n must be at least 1, got {n}");
        }
        if classes == 0 {
            anyhow::ensure!(
                spec.is_none(),
                "--labels needs a class-conditional model, and this run's generator is unconditional; export without --labels"
            );
            let n = n.ok_or_else(|| anyhow::anyhow!("--n is required: how many images to generate"))?;
            return Ok(LabelPlan::Unlabelled { n });
        }
        let need_n = || n.ok_or_else(|| anyhow::anyhow!("--n is required with --labels balanced or uniform"));
        match spec.unwrap_or("balanced") {
            "balanced" => Ok(LabelPlan::Balanced { n: need_n()?, classes }),
            "uniform" => Ok(LabelPlan::Uniform { n: need_n()?, classes }),
            list => {
                let mut counts = Vec::new();
                for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let parsed = part
                        .split_once('=')
                        .and_then(|(c, k)| Some((c.trim().parse::<i64>().ok()?, k.trim().parse::<i64>().ok()?)));
                    let (class, count) = parsed.ok_or_else(|| {
                        anyhow::anyhow!("--labels: `{part}` is not `<class>=<count>`; expected balanced, uniform, or e.g. 3=100,5=200")
                    })?;
                    anyhow::ensure!(
                        (0..classes).contains(&class),
                        "--labels: class {class} is out of range: this model has {classes} classes (0 to {})",
                        classes - 1
                    );
                    anyhow::ensure!(count > 0, "--labels: class {class} needs a positive count, got {count}");
                    anyhow::ensure!(
                        !counts.iter().any(|(c, _)| *c == class),
                        "--labels: class {class} is listed twice"
                    );
                    counts.push((class, count));
                }
                anyhow::ensure!(
                    !counts.is_empty(),
                    "--labels: expected balanced, uniform, or counts such as 3=100,5=200"
                );
                counts.sort_unstable();
                let total: i64 = counts.iter().map(|(_, k)| k).sum();
                if let Some(n) = n {
                    anyhow::ensure!(
                        n == total,
                        "--n {n} disagrees with --labels, which asks for {total} images; give one or make them agree"
                    );
                }
                Ok(LabelPlan::Counts { counts, classes })
            }
        }
    }

    /// How many images the export has.
    pub fn count(&self) -> i64 {
        match self {
            LabelPlan::Unlabelled { n } | LabelPlan::Balanced { n, .. } | LabelPlan::Uniform { n, .. } => *n,
            LabelPlan::Counts { counts, .. } => counts.iter().map(|(_, k)| k).sum(),
        }
    }

    /// The labels of images `start .. start + len`, on the CPU; `None` when unlabelled.
    /// `Uniform` draws from libtorch's generator, which the caller has seeded for the batch.
    pub fn labels(&self, start: i64, len: i64) -> Option<Tensor> {
        let ints = (Kind::Int64, Device::Cpu);
        match self {
            LabelPlan::Unlabelled { .. } => None,
            LabelPlan::Balanced { classes, .. } => Some((Tensor::arange(len, ints) + start).remainder(*classes)),
            LabelPlan::Uniform { classes, .. } => Some(Tensor::randint(*classes, [len], ints)),
            LabelPlan::Counts { counts, .. } => {
                let all: Vec<i64> = counts.iter().flat_map(|&(c, k)| std::iter::repeat_n(c, k as usize)).collect();
                Some(Tensor::from_slice(&all[start as usize..(start + len) as usize]))
            }
        }
    }

    /// Images per class of the labels actually drawn; empty when unlabelled.
    pub fn per_class(&self, labels: Option<&Tensor>) -> Vec<i64> {
        let classes = match self {
            LabelPlan::Unlabelled { .. } => return Vec::new(),
            LabelPlan::Balanced { classes, .. }
            | LabelPlan::Uniform { classes, .. }
            | LabelPlan::Counts { classes, .. } => *classes,
        };
        count_per_class(labels, classes)
    }

    /// The plan as `samples.json` records it.
    pub fn describe(&self) -> String {
        match self {
            LabelPlan::Unlabelled { .. } => "none".into(),
            LabelPlan::Balanced { .. } => "balanced".into(),
            LabelPlan::Uniform { .. } => "uniform".into(),
            LabelPlan::Counts { counts, .. } => {
                counts.iter().map(|(c, k)| format!("{c}={k}")).collect::<Vec<_>>().join(",")
            }
        }
    }
}

/// Images per class among `labels`, for classes `0..classes`.
pub fn count_per_class(labels: Option<&Tensor>, classes: i64) -> Vec<i64> {
    let mut counts = vec![0; classes.max(0) as usize];
    if let Some(labels) = labels {
        for y in Vec::<i64>::try_from(labels).unwrap_or_default() {
            if let Some(c) = counts.get_mut(y as usize) {
                *c += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_cycles_through_the_classes_and_counts_agree() {
        let plan = LabelPlan::parse(None, Some(7), 3).unwrap();
        let y = Tensor::cat(&[plan.labels(0, 4).unwrap(), plan.labels(4, 3).unwrap()], 0);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(plan.per_class(Some(&y)), [3, 2, 2]);
    }

    #[test]
    fn explicit_counts_are_sorted_by_class_and_checked() {
        let plan = LabelPlan::parse(Some("5=2, 1=1"), None, 10).unwrap();
        assert_eq!(plan.count(), 3);
        assert_eq!(Vec::<i64>::try_from(&plan.labels(0, 3).unwrap()).unwrap(), [1, 5, 5]);
        assert_eq!(plan.describe(), "1=1,5=2");
        let err = |spec: &str, n: Option<i64>, classes: i64| {
            LabelPlan::parse(Some(spec), n, classes).unwrap_err().to_string()
        };
        assert_eq!(err("12=5", None, 10), "--labels: class 12 is out of range: this model has 10 classes (0 to 9)");
        assert_eq!(
            err("3=5", Some(4), 10),
            "--n 4 disagrees with --labels, which asks for 5 images; give one or make them agree"
        );
        assert_eq!(
            err("three", None, 10),
            "--labels: `three` is not `<class>=<count>`; expected balanced, uniform, or e.g. 3=100,5=200"
        );
        assert_eq!(err("balanced", None, 0), "--labels needs a class-conditional model, and this run's generator is unconditional; export without --labels");
        assert_eq!(err("1=1,1=2", None, 10), "--labels: class 1 is listed twice");
    }
}
