//! Checks on networks built by plugin code (`Box<dyn Network>`, before it crosses the
//! boundary): parameter counts, singular values, weights decided by the seed, and their
//! tensors and inputs in the shapes tests want.
use std::collections::BTreeMap;

use lab_plugin_api::tch::{self, Kind, Tensor};
use lab_plugin_api::Network;

/// The largest singular value of a 2-D tensor, via the eigenvalues of WᵀW in float64.
pub fn top_singular_value(w: &Tensor) -> f64 {
    let w = w.to_kind(Kind::Double);
    w.tr().matmul(&w).linalg_eigvalsh("L").max().sqrt().double_value(&[])
}

/// The number of trainable values in `net`: buffers (spectral norm's `u`, batch-norm
/// statistics) are not counted, as PyTorch's parameter counts do not count them.
pub fn trainable_count(net: &dyn Network) -> i64 {
    net.tensors().iter().filter(|(_, _, trainable)| *trainable).map(|(_, t, _)| t.numel() as i64).sum()
}

/// Asserts that `build` gives the same tensors, names and values, twice under one seed and
/// different values under another: what makes a run reproducible from its seed. `what` names
/// the network in failure messages. The caller holds [`rng_lock`](crate::rng_lock).
pub fn assert_seed_decides_weights(what: &str, build: impl Fn() -> Box<dyn Network>) {
    tch::manual_seed(0);
    let a = build().tensors();
    tch::manual_seed(0);
    let b = build().tensors();
    assert_eq!(a.len(), b.len(), "{what}: two builds under one seed have different variables");
    for ((na, ta, _), (nb, tb, _)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{what}: {na} differs between two builds under one seed");
    }
    tch::manual_seed(1);
    let c = build().tensors();
    assert!(a.iter().zip(&c).any(|((_, ta, _), (_, tc, _))| !ta.equal(tc)), "{what}: a new seed changes weights");
}

/// `net`'s tensors by name, each with whether it is trained (buffers are not).
pub fn tensors(net: &dyn Network) -> BTreeMap<String, (Tensor, bool)> {
    net.tensors().into_iter().map(|(name, t, trainable)| (name, (t, trainable))).collect()
}

/// The inputs of a G/D network: `[main]`, or `[main, labels]` when it is conditional.
pub fn inputs(x: &Tensor, y: Option<&Tensor>) -> Vec<Tensor> {
    std::iter::once(x.shallow_clone()).chain(y.map(Tensor::shallow_clone)).collect()
}
