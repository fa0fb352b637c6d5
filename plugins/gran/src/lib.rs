//! # lab-plugin-gran
//!
//! The `gran` architecture: GRAN (Im, Kim, Jiang & Memisevic, "Generating images with recurrent
//! adversarial networks", 2016) with the official networks for 28×28 images (jiwoongim/GRAN
//! `recGenI28.py` and `convnet_cuda28.py`, their constructors' defaults `nkerns = [8, 4, 1]`,
//! `ckern = 32` and `nkerns = [1, 8, 4]`, `ckern = 10`) and for 32×32 CIFAR-10 (`recGenI32.py`,
//! `convnet_cuda32.py`, `nkerns = [8, 4, 2, 1]`, `ckern = 128`), with `num_hid = 100`,
//! `num_z = 100`, `num_steps = 5` from `main_granI_cifar10.py`, the only main script. The
//! networks are in [`model`], the `[model.config]` in [`config`].
//!
//! G draws T canvases C_1..C_T, each from its own z_t and a code h_c of the canvas before, and
//! outputs sigmoid(Σ_t C_t): the sigmoid is applied once, to the sum. Its second output is the
//! per-step images sigmoid(Σ_{t≤τ} C_t), which the architecture draws as the run's grid (one
//! sample per row, τ = 1..T across), the official `sequential_drawing`; its third, the canvases,
//! from which it measures `canvas_share_max` (the largest step's share of their magnitude) at
//! each evaluation.
//!
//! Where the official code is ambiguous or departs from the paper, and what was chosen:
//! - **A fresh z_t per step.** The official recurrence reads `Zs[0]` at every step (the scan
//!   passes the noise as a non-sequence), so the same z feeds all T steps, while the paper (§3)
//!   draws z_t per step. This follows the paper: the latent is `[N, T·z_dim]`, step t reading
//!   columns t·z_dim .. (t+1)·z_dim, all N(0, I) (the core's default draw, so no latent hook).
//! - **The 28×28 map is 7×7** (`filter_sizes[0] = 7` in `recGenI28`), not the 4×4 of the 32×32
//!   variant: [h_z, h_c] → BN-FC (with bias) → ReLU → 256×7×7 → deconv 5×5/2 to 128 at 14×14,
//!   ReLU → deconv 5×5/2 to the image's channels, linear. The encoder mirrors it: BN-conv 5×5/2
//!   to 128, ReLU, BN-conv 5×5/2 to 256, ReLU, BN-FC to 100, tanh. h_z = tanh(BN-FC(z_t)), and
//!   h_c,0 = 0. The last step's code is not computed: nothing reads it.
//! - **At 32×32** the map is 1024×4×4 and three deconvolutions go to 512, 256 and 3 channels;
//!   the encoder's convolutions go to 256 and 512 (batch-normed) and then to 1024 with a plain
//!   convolution with a bias and no norm (`recGenI32`'s `L5` is a `Conv_layer`, unlike its 28×28
//!   counterpart). D has three BN-convs, 1024 → 512 → 256, before the same head. Widths are
//!   configurable (`g_channels`, `d_channels`; 0 is the official width for the data's size).
//! - **Transposed convolutions** double the side exactly (the official cuDNN gradient of a
//!   padding-2 stride-2 convolution): PyTorch's `output_padding = 1`. Theano's `conv_mode='conv'`
//!   flips kernels, which is only a relabelling of the weights.
//! - **Batch norm** is PyTorch's (ε = 1e-5 under the square root, biased batch variance, running
//!   statistics with momentum 0.1 used in evaluation). The official layers divide by σ + 1e-6,
//!   normalise with the batch's statistics even when sampling, and keep only the last batch's
//!   statistics; the lab evaluates with running statistics like every other architecture.
//!   One set of G's norms serves all T steps, as the official weights do.
//! - **D** (`convnet28`): BN-conv 5×5/2 to 80, ReLU, BN-conv 5×5/2 to 40, ReLU, FC to 100 with
//!   a bias, tanh, FC to 1 without a bias. The official sigmoid belongs to the loss here
//!   (`non-saturating` takes logits); the features are the tanh layer.
//! - **Initialisation**: fully connected weights U(±√(6/(fan_in + fan_out))), convolution and
//!   deconvolution filters N(0, 0.01²) (the default of the official `init_conv_weights`, which
//!   every layer uses), biases 0, norms' gains 1 and shifts 0.
//! - **Only 28×28 and 32×32.** The 64×64 and 128×128 variants (LSUN) are not implemented; other
//!   sizes are refused with a message saying so.
//!
//! The optimiser quirks (the official "ADAM" has no momentum in effect; D's weight decay) are
//! settings of the experiment, documented in `experiments/zoo/gran_fashion_mnist.toml`.
//!
//! `reference/gran.py` is an independent PyTorch re-implementation; a test feeds it this crate's
//! weights and compares outputs, gradients, buffers and parameter counts in float64.
pub mod config;
pub mod model;

pub use config::{GranConfig, Settings};
pub use model::{Discriminator, Generator, Gran};

lab_plugin_api::export_plugins! { architecture: Gran }

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global RNG.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
