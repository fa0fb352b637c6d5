//! Aggregation over seeds: the mean and the sample standard deviation.

/// The values of one metric over the seeds of one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// Sample standard deviation (divided by n − 1); `None` for a single seed.
    pub std: Option<f64>,
    pub n: usize,
    /// The seeds, in the order of the values.
    pub seeds: Vec<u64>,
}

impl Stat {
    /// `None` for no values.
    pub fn of(values: &[(u64, f64)]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().map(|v| v.1).sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            let ss: f64 = values.iter().map(|v| (v.1 - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Some(Self { mean, std, n, seeds: values.iter().map(|v| v.0).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::Stat;

    #[test]
    fn mean_and_sample_std() {
        let s = Stat::of(&[(0, 1.0), (1, 2.0), (2, 3.0)]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (2.0, Some(1.0), 3));
        assert_eq!(Stat::of(&[(4, 5.0)]).unwrap().std, None);
        assert!(Stat::of(&[]).is_none());
    }
}
