//! Diagonal-Gaussian latents of encoders (VAE, VAE-GAN, ALI): the reparameterisation trick and
//! the analytic KL to the standard normal prior.
use lab_plugin_api::tch::{Kind, Tensor};

/// z = μ + σ·ε, ε ~ N(0, I) from libtorch's generator (which the core seeds for every phase).
pub fn reparameterise(mu: &Tensor, logvar: &Tensor) -> Tensor {
    mu + Tensor::randn_like(mu) * (logvar * 0.5).exp()
}

/// KL(N(μ, σ²) ‖ N(0, I)) per row, analytically: ½·Σ(σ² + μ² − 1 − log σ²).
pub fn kl_standard_normal(mu: &Tensor, logvar: &Tensor) -> Tensor {
    ((logvar.exp() + mu.square() - 1.0 - logvar) * 0.5).sum_dim_intlist(1, false, Kind::Float)
}
