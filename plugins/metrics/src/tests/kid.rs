//! KID against the reference formula on the very subsets lab draws.
use lab_plugin_api::tch::Tensor;

use super::{assert_close, field, normal, npy, reference, scratch};
use crate::kid::{draw_subsets, kernel_inception_distance, mmd2_unbiased};
use crate::rng::SplitMix64;

/// The subsets as two `[subsets, m]` index tensors (real, fake), for the reference script.
pub(super) fn index_tensors(subsets: Vec<(Vec<i64>, Vec<i64>)>) -> (Tensor, Tensor) {
    let (real, fake): (Vec<Tensor>, Vec<Tensor>) =
        subsets.iter().map(|(r, f)| (Tensor::from_slice(r), Tensor::from_slice(f))).unzip();
    (Tensor::stack(&real, 0), Tensor::stack(&fake, 0))
}

#[test]
fn kid_matches_the_reference_on_the_same_subsets() {
    let mut rng = SplitMix64::new(11);
    let (real, fake) = (normal(&mut rng, 300, 16, 0.0, 1.0), normal(&mut rng, 250, 16, 0.3, 1.2));
    let (subsets, size, seed) = (20, 100, 42);
    let (mean, std) = kernel_inception_distance(&real, &fake, subsets, size, seed).unwrap();
    let (ridx, fidx) = index_tensors(draw_subsets(seed, 300, 250, 100, 20));
    let dir = scratch("kid");
    let theirs = reference(&[
        "kid",
        &npy(&dir, "real.npy", &real),
        &npy(&dir, "fake.npy", &fake),
        &npy(&dir, "ridx.npy", &ridx),
        &npy(&dir, "fidx.npy", &fidx),
    ]);
    assert_close("KID mean, 20 subsets of 100, d = 16", mean, field(&theirs, "kid"), 1e-9);
    assert_close("KID std", std, field(&theirs, "kid_std"), 1e-9);
}

#[test]
fn subset_size_is_clamped_to_the_smaller_side() {
    let mut rng = SplitMix64::new(12);
    let (real, fake) = (normal(&mut rng, 40, 8, 0.0, 1.0), normal(&mut rng, 30, 8, 1.0, 1.0));
    // One subset holding every sample is the plain unbiased MMD² on all of them.
    let (all_real, all_fake) = (normal(&mut rng, 30, 8, 0.0, 1.0), fake.shallow_clone());
    let (mean, std) = kernel_inception_distance(&all_real, &all_fake, 1, 1000, 0).unwrap();
    let direct = mmd2_unbiased(&all_real, &all_fake).double_value(&[]);
    assert_close("KID with one full subset vs MMD²", mean, direct, 1e-12);
    assert_eq!(std, 0.0);
    assert!(kernel_inception_distance(&real, &fake, 3, 1000, 0).is_ok());
    let err = kernel_inception_distance(&real.narrow(0, 0, 1), &fake, 3, 10, 0).unwrap_err().to_string();
    assert_eq!(err, "kid needs at least 2 real and 2 generated images; got 1 and 30");
}

#[test]
fn kid_of_a_set_with_itself_is_small_next_to_a_shifted_one() {
    let mut rng = SplitMix64::new(13);
    let x = normal(&mut rng, 200, 16, 0.0, 1.0);
    let (same, _) = kernel_inception_distance(&x, &x, 10, 100, 1).unwrap();
    let (far, _) = kernel_inception_distance(&x, &(&x + 3.0), 10, 100, 1).unwrap();
    println!("KID: same set {same:.3e}, shifted set {far:.3e}");
    assert!(same.abs() < 1e-3 * far, "{same} {far}");
}
