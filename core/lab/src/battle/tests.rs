//! The battle's arithmetic on constructed values: errors, ratios and the paper's verdict rule.
use tch::{Kind, Tensor};

use super::{called_real, ratio, verdict, Verdict};

#[test]
fn a_logit_is_called_real_only_strictly_above_the_boundary() {
    let logits = Tensor::from_slice(&[-2.0f64, -0.0, 0.0, 1e-9, 3.0, 0.5]);
    assert_eq!(called_real(&logits, 0.0), 3);
    // The least-squares loss's 0/1 coding puts its boundary at 0.5.
    assert_eq!(called_real(&logits, 0.5), 1);
    assert_eq!(called_real(&Tensor::zeros([0], (Kind::Double, tch::Device::Cpu)), 0.0), 0);
}

#[test]
fn ratios_treat_two_flawless_discriminators_as_equal() {
    assert_eq!(ratio(0.0, 0.0), 1.0);
    assert_eq!(ratio(0.2, 0.4), 0.5);
    assert_eq!(ratio(0.3, 0.0), f64::INFINITY);
    assert_eq!(ratio(0.0, 0.3), 0.0);
}

#[test]
fn a_winner_is_declared_from_r_sample_only_when_r_test_is_near_one() {
    // G1 fools D2 more often than G2 fools D1: M1 wins.
    assert_eq!(verdict(1.0, 0.5, 0.1), Verdict::FirstWins);
    assert_eq!(verdict(0.95, 2.0, 0.1), Verdict::SecondWins);
    assert_eq!(verdict(1.05, 1.0, 0.1), Verdict::Tie);
    // The edge of the tolerance is inside it.
    assert_eq!(verdict(1.25, 0.5, 0.25), Verdict::FirstWins);
    // A discriminator that errs twice as often on real images is not comparable.
    assert_eq!(verdict(2.0, 0.5, 0.1), Verdict::NoDecision);
    assert_eq!(verdict(0.5, 0.5, 0.1), Verdict::NoDecision);
    assert_eq!(verdict(f64::INFINITY, 0.5, 0.1), Verdict::NoDecision);
    assert_eq!(verdict(f64::NAN, 0.5, 0.1), Verdict::NoDecision);
}
