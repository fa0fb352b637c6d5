//! # lab-plugin-began
//!
//! BEGAN (Berthelot, Schumm & Metz 2017, "Boundary Equilibrium GANs") as carpedm20's
//! BEGAN-tensorflow builds it:
//! - `began` ([`model`]): an auto-encoder discriminator (its first output is the
//!   reconstruction) and a generator with the decoder's architecture; ELU, no batch norm.
//! - `began` ([`loss`]): L(v) = mean |v − D(v)|; L_D = L(x) − k_t·L(G(z)), L_G = L(G(z)), both
//!   networks stepped from one forward pass; k_{t+1} = clip(k_t + λ_k(γ·L(x) − L(G(z))), 0, 1)
//!   kept as checkpointed state; the convergence measure M_global logged.
pub mod loss;
pub mod model;

pub use loss::{Began, BeganConfig};
pub use model::{BeganNetworks, BeganNetworksConfig};

lab_plugin_api::export_plugins! {
    architecture: BeganNetworks,
    loss: Began,
}

#[cfg(test)]
mod tests;
