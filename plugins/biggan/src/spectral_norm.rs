//! Spectral normalisation as BigGAN-PyTorch applies it (`layers.SN`, one singular value, one
//! power iteration per forward pass): a weight divided by an estimate of its largest singular
//! value.
use lab_plugin_api::tch::{self, nn, Kind, Tensor};

/// BigGAN-PyTorch's `SN_eps` as the DiffAugment scripts run it (utils.py default): the floor
/// under a vector's norm when it is normalised.
pub const SN_EPS: f64 = 1e-8;

/// A weight and the left singular-vector estimate `u` carried between steps.
///
/// `u` is a non-trainable buffer in the network's VarStore (`<name>_u`, shape `[rows]`), so it
/// is checkpointed with the weights and a resumed run normalises exactly as the uninterrupted one.
#[derive(Debug)]
pub struct SpectralNorm {
    weight: Tensor,
    u: Tensor,
}

impl SpectralNorm {
    /// Wraps `weight` (created under `p` as `name`) and registers its buffer `<name>_u`.
    pub fn new(p: &nn::Path, name: &str, weight: Tensor) -> Self {
        let rows = weight.size()[0];
        // A random start (from libtorch's seeded global RNG) is almost surely not orthogonal to
        // the top singular vector, which the power iteration needs to converge.
        let u = normalize(&Tensor::randn([rows], (Kind::Float, p.device())));
        let u = p.add(&format!("{name}_u"), u, false);
        Self { weight, u }
    }

    /// The raw, trainable weight.
    pub fn raw(&self) -> &Tensor {
        &self.weight
    }

    /// `W / σ(W)` after one power-iteration step from the stored `u`, viewing W as a
    /// `rows × (everything else)` matrix. As in BigGAN-PyTorch, the step is taken in both modes,
    /// but only training stores the new `u`, so evaluation leaves the network unchanged.
    pub fn normalized(&self, train: bool) -> Tensor {
        let matrix = self.weight.reshape([self.weight.size()[0], -1]);
        let (u, v) = tch::no_grad(|| {
            let v = normalize(&matrix.tr().mv(&self.u));
            let u = normalize(&matrix.mv(&v));
            if train {
                // In place through a shallow clone: the buffer is shared with the VarStore and
                // the core's adopted copy, so it must change in place, never be rebound.
                self.u.shallow_clone().copy_(&u);
            }
            (u, v)
        });
        // u and v are constants; the gradient flows through W in σ = uᵀ W v, as in the paper.
        let sigma = u.dot(&matrix.mv(&v));
        &self.weight / sigma
    }
}

/// `x / max(‖x‖, SN_EPS)`, like `torch.nn.functional.normalize`.
fn normalize(x: &Tensor) -> Tensor {
    x / x.norm().clamp_min(SN_EPS)
}

/// The largest singular value of a 2-D tensor, via the eigenvalues of WᵀW in float64.
#[cfg(test)]
pub(crate) fn top_singular_value(w: &Tensor) -> f64 {
    let w = w.to_kind(Kind::Double);
    w.tr().matmul(&w).linalg_eigvalsh("L").max().sqrt().double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::Device;

    #[test]
    fn converges_to_unit_spectral_norm() {
        let _rng = crate::rng_lock();
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let w = p.randn("weight", &[16, 8, 3, 3], 0.0, 1.0);
        let sn = SpectralNorm::new(&p, "weight", w.shallow_clone());
        let before = top_singular_value(&w.reshape([16, -1]));
        let mut normalized = sn.normalized(true);
        for _ in 0..30 {
            normalized = sn.normalized(true);
        }
        let after = top_singular_value(&normalized.reshape([16, -1]));
        assert!(before > 2.0, "a random 16x72 weight has a large norm: {before}");
        assert!((after - 1.0).abs() < 1e-3, "largest singular value after normalisation: {after}");
    }

    #[test]
    fn evaluation_does_not_move_u() {
        let _rng = crate::rng_lock();
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let w = p.randn("weight", &[4, 6], 0.0, 1.0);
        let sn = SpectralNorm::new(&p, "weight", w);
        let u = vs.variables()["weight_u"].copy();
        let a = sn.normalized(false);
        assert!(vs.variables()["weight_u"].equal(&u));
        assert!(a.equal(&sn.normalized(false)), "evaluation is repeatable");
        let _ = sn.normalized(true);
        assert!(!vs.variables()["weight_u"].equal(&u));
        assert!(!vs.variables()["weight_u"].requires_grad(), "u is a buffer, not a parameter");
    }

    #[test]
    fn gradient_reaches_the_raw_weight() {
        let _rng = crate::rng_lock();
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let w = p.randn("weight", &[3, 5], 0.0, 1.0);
        let sn = SpectralNorm::new(&p, "weight", w);
        sn.normalized(true).sum(Kind::Float).backward();
        assert!(sn.raw().grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }
}
