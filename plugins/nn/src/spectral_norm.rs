//! Spectral normalisation (Miyato et al., 2018): a weight divided by an estimate of its largest
//! singular value σ, refined by one power-iteration step per forward pass.
//!
//! Implementations agree on the method but not on two details that change the numbers, so a
//! [`SnOptions`] names them and every architecture fixes its own: how a vector is kept away
//! from a division by zero when it is normalised ([`Eps`]), and what an evaluation-mode pass
//! does with the stored estimate ([`EvalStep`]). Changing either for an existing architecture
//! changes its outputs, so they are constants of the architecture, not user settings.
use lab_plugin_api::tch::{self, nn, Kind, Tensor};

/// How the power iteration normalises a vector `x`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Eps {
    /// `x / max(‖x‖, eps)`, like `torch.nn.functional.normalize`: exact for every vector
    /// longer than `eps`.
    Floor(f64),
    /// `x / (‖x‖ + eps)`: always slightly shorter than a unit vector, by a relative `eps / ‖x‖`.
    Offset(f64),
}

impl Eps {
    /// `x` scaled to (about) unit length by this rule.
    pub fn normalize(self, x: &Tensor) -> Tensor {
        match self {
            Eps::Floor(eps) => x / x.norm().clamp_min(eps),
            Eps::Offset(eps) => x / (x.norm() + eps),
        }
    }
}

/// What a forward pass in evaluation mode does with the stored estimate `u`. Either way
/// evaluation leaves the network unchanged: only training stores a new `u`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalStep {
    /// Take the same power-iteration step as training and use its result without storing it,
    /// so σ is the estimate the next training pass would use.
    Iterate,
    /// Take no step: use the stored `u` as it is and derive only `v` from it, so σ comes from
    /// the estimate the last training pass stored, without refining it further.
    Reuse,
}

/// The details of spectral normalisation that differ between implementations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SnOptions {
    pub eps: Eps,
    pub eval: EvalStep,
}

/// A weight and the left singular-vector estimate `u` carried between steps.
///
/// `u` is a non-trainable buffer in the network's VarStore (`<name>_u`, shape `[rows]`), so it
/// is checkpointed with the weights and a resumed run normalises exactly as the uninterrupted one.
#[derive(Debug)]
pub struct SpectralNorm {
    weight: Tensor,
    u: Tensor,
    options: SnOptions,
}

impl SpectralNorm {
    /// Wraps `weight` (created under `p` as `name`) and registers its buffer `<name>_u`.
    pub fn new(p: &nn::Path, name: &str, weight: Tensor, options: SnOptions) -> Self {
        let rows = weight.size()[0];
        // A random start (from libtorch's seeded global RNG) is almost surely not orthogonal to
        // the top singular vector, which the power iteration needs to converge.
        let u = options.eps.normalize(&Tensor::randn([rows], (Kind::Float, p.device())));
        let u = p.add(&format!("{name}_u"), u, false);
        Self { weight, u, options }
    }

    /// The raw, trainable weight.
    pub fn raw(&self) -> &Tensor {
        &self.weight
    }

    /// `W / σ(W)`, viewing W as a `rows × (everything else)` matrix, with σ = uᵀ W v for the
    /// singular-vector estimates u and v. Training first takes one power-iteration step from the
    /// stored `u` and stores the new one; evaluation follows [`SnOptions::eval`].
    pub fn normalized(&self, train: bool) -> Tensor {
        let normalize = |x: &Tensor| self.options.eps.normalize(x);
        let matrix = self.weight.reshape([self.weight.size()[0], -1]);
        let (u, v) = tch::no_grad(|| {
            let v = normalize(&matrix.tr().mv(&self.u));
            if !train && self.options.eval == EvalStep::Reuse {
                // A copy, not the buffer itself: σ's graph must not see a later training step.
                return (self.u.copy(), v);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::Device;
    use lab_plugin_testkit::network::top_singular_value;
    use lab_plugin_testkit::rng_lock;

    /// BigGAN's choice and DCGAN's: between them they cover both values of each option.
    const VARIANTS: [SnOptions; 2] = [
        SnOptions { eps: Eps::Floor(1e-8), eval: EvalStep::Iterate },
        SnOptions { eps: Eps::Offset(1e-12), eval: EvalStep::Reuse },
    ];

    /// A fresh VarStore holding `p/weight` of shape `dims` and its spectral norm.
    fn wrapped(seed: i64, dims: &[i64], options: SnOptions) -> (nn::VarStore, SpectralNorm) {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let w = p.randn("weight", dims, 0.0, 1.0);
        let sn = SpectralNorm::new(&p, "weight", w, options);
        (vs, sn)
    }

    fn stored_u(vs: &nn::VarStore) -> Tensor {
        vs.variables()["weight_u"].copy()
    }

    #[test]
    fn eps_rules() {
        let x = Tensor::from_slice(&[3.0f64, 4.0]);
        let unit = Tensor::from_slice(&[0.6f64, 0.8]);
        assert!(Eps::Floor(1e-8).normalize(&x).allclose(&unit, 0.0, 1e-15, false));
        let offset = Eps::Offset(0.5).normalize(&x);
        assert!(offset.allclose(&(&x / 5.5), 0.0, 1e-15, false), "divided by ‖x‖ + eps");
        // A vector shorter than eps: the floor divides by eps, the offset by ‖x‖ + eps.
        let tiny = Tensor::from_slice(&[3e-9f64, 4e-9]);
        assert!(Eps::Floor(1e-8).normalize(&tiny).allclose(&(&tiny / 1e-8), 0.0, 1e-15, false));
        assert!(Eps::Offset(1e-8).normalize(&tiny).allclose(&(&tiny / 1.5e-8), 0.0, 1e-15, false));
    }

    #[test]
    fn converges_to_unit_spectral_norm() {
        let _rng = rng_lock();
        for options in VARIANTS {
            let (_vs, sn) = wrapped(0, &[16, 8, 3, 3], options);
            let before = top_singular_value(&sn.raw().reshape([16, -1]));
            let mut normalized = sn.normalized(true);
            for _ in 0..30 {
                normalized = sn.normalized(true);
            }
            let after = top_singular_value(&normalized.reshape([16, -1]));
            assert!(before > 2.0, "a random 16x72 weight has a large norm: {before}");
            assert!((after - 1.0).abs() < 1e-3, "{options:?}: largest singular value after normalisation: {after}");
            // Once converged, evaluation agrees with training under either eval rule.
            let eval = top_singular_value(&sn.normalized(false).reshape([16, -1]));
            assert!((eval - 1.0).abs() < 1e-3, "{options:?}: in evaluation: {eval}");
        }
    }

    #[test]
    fn evaluation_is_side_effect_free_and_repeatable() {
        let _rng = rng_lock();
        for options in VARIANTS {
            let (vs, sn) = wrapped(1, &[4, 6], options);
            let u = stored_u(&vs);
            let a = sn.normalized(false);
            assert!(stored_u(&vs).equal(&u), "{options:?}: evaluation moved u");
            assert!(a.equal(&sn.normalized(false)), "{options:?}: evaluation is repeatable");
            let _ = sn.normalized(true);
            assert!(!stored_u(&vs).equal(&u), "{options:?}: training moves u");
            assert!(!vs.variables()["weight_u"].requires_grad(), "u is a buffer, not a parameter");
        }
    }

    /// The two eval rules, written out: `Iterate` gives exactly what the next training pass
    /// gives, `Reuse` divides by uᵀ W v for the stored u and v = Wᵀu / ‖Wᵀu‖.
    #[test]
    fn evaluation_rules() {
        let _rng = rng_lock();
        let [iterate, reuse] = VARIANTS;
        let (_vs, sn) = wrapped(2, &[5, 7], iterate);
        let eval = sn.normalized(false);
        assert!(eval.equal(&sn.normalized(true)), "Iterate: the step training is about to take");

        let (vs, sn) = wrapped(2, &[5, 7], reuse);
        let (w, u) = (sn.raw().detach(), stored_u(&vs));
        let v = reuse.eps.normalize(&w.tr().mv(&u));
        let expected = &w / u.dot(&w.mv(&v));
        assert!(sn.normalized(false).allclose(&expected, 1e-6, 1e-7, false), "Reuse: σ from the stored u");
        assert!(!sn.normalized(false).allclose(&sn.normalized(true), 1e-6, 1e-7, false), "no step in eval");
    }

    #[test]
    fn gradient_reaches_the_raw_weight() {
        let _rng = rng_lock();
        for options in VARIANTS {
            for train in [true, false] {
                let (_vs, sn) = wrapped(3, &[3, 5], options);
                sn.normalized(train).sum(Kind::Float).backward();
                let grad = sn.raw().grad().abs().sum(Kind::Float).double_value(&[]);
                assert!(grad > 0.0, "{options:?}, train {train}: no gradient");
            }
        }
    }

    #[test]
    fn u_is_a_unit_buffer_named_after_the_weight() {
        let _rng = rng_lock();
        for options in VARIANTS {
            tch::manual_seed(4);
            let vs = nn::VarStore::new(Device::Cpu);
            let p = vs.root() / "conv";
            let w = p.randn("kernel", &[6, 2, 3, 3], 0.0, 1.0);
            let _sn = SpectralNorm::new(&p, "kernel", w, options);
            let vars = vs.variables();
            let u = &vars["conv.kernel_u"];
            assert_eq!(u.size(), [6], "one entry per output row");
            assert!((u.norm().double_value(&[]) - 1.0).abs() < 1e-6);
        }
    }
}
