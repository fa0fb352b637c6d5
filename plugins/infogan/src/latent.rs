//! InfoGAN's structured latent: `[noise, categorical codes (one-hot), continuous codes]`, in
//! that order, as the official code concatenates them. Noise and continuous codes are
//! U(−1, 1); each categorical code is uniform over its classes.
use lab_nn::prelude::*;

/// The latent's layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Codes {
    pub noise: i64,
    /// Classes of each categorical code (MNIST: one code of 10).
    pub categorical: Vec<i64>,
    /// How many continuous codes (MNIST: 2).
    pub continuous: i64,
}

impl Codes {
    /// The codes' width (what Q predicts): every categorical's classes plus the continuous codes.
    pub fn code_width(&self) -> i64 {
        self.categorical.iter().sum::<i64>() + self.continuous
    }

    /// The whole latent's width.
    pub fn width(&self) -> i64 {
        self.noise + self.code_width()
    }

    /// `n` latents drawn from the prior with libtorch's generator.
    pub fn sample(&self, n: i64, device: tch::Device) -> Tensor {
        let opts = (Kind::Float, device);
        let mut parts = vec![Tensor::rand([n, self.noise], opts) * 2.0 - 1.0];
        for &k in &self.categorical {
            let class = Tensor::randint(k, [n], (Kind::Int64, device));
            parts.push(class.one_hot(k).to_kind(Kind::Float));
        }
        parts.push(Tensor::rand([n, self.continuous], opts) * 2.0 - 1.0);
        Tensor::cat(&parts, 1)
    }

    /// The codes part of latents `[N, width]`.
    pub fn codes_of(&self, z: &Tensor) -> Tensor {
        z.narrow(1, self.noise, self.code_width())
    }

    /// Latents with the given noise rows `[N, noise]`, categorical code 0 set to `class[i]`
    /// (other categorical codes to class 0) and the continuous codes to `continuous` `[N, c]`.
    pub fn compose(&self, noise: &Tensor, class: &Tensor, continuous: &Tensor) -> Tensor {
        let mut parts = vec![noise.shallow_clone()];
        for (i, &k) in self.categorical.iter().enumerate() {
            let c = if i == 0 { class.shallow_clone() } else { class.zeros_like() };
            parts.push(c.one_hot(k).to_kind(Kind::Float));
        }
        parts.push(continuous.shallow_clone());
        Tensor::cat(&parts, 1)
    }
}
