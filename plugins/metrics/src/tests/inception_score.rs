//! The Inception score against the reference and against values known in closed form.
use lab_plugin_api::tch::{Device, Kind, Tensor};

use super::{assert_close, field, normal, npy, reference, scratch};
use crate::inception_score::inception_score;
use crate::rng::SplitMix64;

#[test]
fn is_matches_the_reference_on_random_probabilities() {
    let mut rng = SplitMix64::new(21);
    let probs = (normal(&mut rng, 1000, 10, 0.0, 3.0)).softmax(1, Kind::Double);
    let (mean, std) = inception_score(&probs, 10).unwrap();
    let dir = scratch("is");
    let theirs = reference(&["is", &npy(&dir, "probs.npy", &probs), "--splits", "10"]);
    assert_close("IS mean, 1000 x 10 classes, 10 splits", mean, field(&theirs, "is"), 1e-9);
    assert_close("IS std", std, field(&theirs, "is_std"), 1e-9);
    // Uneven splits (1003 is not a multiple of 7) follow the same i·N/splits rule.
    let probs = normal(&mut rng, 1003, 10, 0.0, 3.0).softmax(1, Kind::Double);
    let (mean, std) = inception_score(&probs, 7).unwrap();
    let theirs = reference(&["is", &npy(&dir, "probs7.npy", &probs), "--splits", "7"]);
    assert_close("IS mean, 1003 samples, 7 splits", mean, field(&theirs, "is"), 1e-9);
    assert_close("IS std, 7 splits", std, field(&theirs, "is_std"), 1e-9);
}

#[test]
fn is_has_its_closed_form_values() {
    // Confident and evenly spread over C classes: IS = C. Uniform predictions: IS = 1.
    let classes = 10;
    let one_hot = Tensor::eye(classes, (Kind::Double, Device::Cpu)).repeat([20, 1]);
    let (mean, std) = inception_score(&one_hot, 4).unwrap();
    assert!((mean - 10.0).abs() < 1e-12 && std < 1e-12, "{mean} {std}");
    let uniform = Tensor::full([200, classes], 0.1, (Kind::Double, Device::Cpu));
    let (mean, _) = inception_score(&uniform, 4).unwrap();
    assert!((mean - 1.0).abs() < 1e-12, "{mean}");
}

#[test]
fn logits_are_refused_with_a_hint() {
    let mut rng = SplitMix64::new(22);
    let err = inception_score(&normal(&mut rng, 20, 10, 0.0, 1.0), 2).unwrap_err().to_string();
    assert!(err.starts_with("is: the network's class outputs are not probabilities (row sums "), "{err}");
    assert!(err.ends_with("set `softmax = true` if it returns logits, or check `probs_args`"), "{err}");
    let err = inception_score(&Tensor::eye(3, (Kind::Double, Device::Cpu)), 10).unwrap_err().to_string();
    assert_eq!(err, "is needs at least as many generated images as splits (10); got 3");
}
