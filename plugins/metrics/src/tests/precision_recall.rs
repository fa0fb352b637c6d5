//! Precision and recall against exact pairwise distances, and their limiting cases.
use super::{field, normal, npy, reference, scratch};
use crate::precision_recall::precision_recall;
use crate::rng::SplitMix64;

#[test]
fn precision_and_recall_match_the_reference() {
    let mut rng = SplitMix64::new(31);
    let (real, fake) = (normal(&mut rng, 300, 8, 0.0, 1.0), normal(&mut rng, 250, 8, 0.7, 0.6));
    let dir = scratch("pr");
    let (r, f) = (npy(&dir, "real.npy", &real), npy(&dir, "fake.npy", &fake));
    for k in [1, 3, 5] {
        // A row batch that does not divide either count exercises the batching.
        let (precision, recall) = precision_recall(&real, &fake, k, 37).unwrap();
        let theirs = reference(&["pr", &r, &f, "--k", &k.to_string()]);
        println!(
            "k = {k}: precision {precision} (reference {}), recall {recall} (reference {})",
            theirs["precision"], theirs["recall"]
        );
        assert_eq!(precision, field(&theirs, "precision"), "precision, k = {k}");
        assert_eq!(recall, field(&theirs, "recall"), "recall, k = {k}");
        assert!(precision > 0.0 && precision < 1.0 && recall > 0.0 && recall < 1.0);
    }
}

#[test]
fn identical_sets_have_full_precision_and_recall() {
    let mut rng = SplitMix64::new(32);
    let x = normal(&mut rng, 200, 16, 0.0, 1.0);
    assert_eq!(precision_recall(&x, &x, 3, 64).unwrap(), (1.0, 1.0));
}

#[test]
fn far_apart_sets_have_none() {
    let mut rng = SplitMix64::new(33);
    let real = normal(&mut rng, 100, 16, 0.0, 1.0);
    let fake = normal(&mut rng, 100, 16, 50.0, 1.0);
    assert_eq!(precision_recall(&real, &fake, 3, 1000).unwrap(), (0.0, 0.0));
    // Mode dropping: real data has two far-apart modes, the generator covers one of them.
    let real = lab_plugin_api::tch::Tensor::cat(
        &[normal(&mut rng, 100, 16, -10.0, 1.0), normal(&mut rng, 100, 16, 10.0, 1.0)],
        0,
    );
    let fake = normal(&mut rng, 100, 16, 10.0, 1.0);
    let (precision, recall) = precision_recall(&real, &fake, 3, 1000).unwrap();
    println!("one of two modes: precision {precision}, recall {recall}");
    assert!(precision > 0.7 && recall > 0.2 && recall <= 0.5, "{precision} {recall}");
}

#[test]
fn too_few_samples_are_refused() {
    let mut rng = SplitMix64::new(34);
    let x = normal(&mut rng, 3, 4, 0.0, 1.0);
    let err = precision_recall(&x, &x, 3, 10).unwrap_err().to_string();
    assert_eq!(err, "pr needs more than k = 3 real and generated images (the k-th neighbour of each); got 3 and 3");
}
