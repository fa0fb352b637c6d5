//! k_t's update and clamp, the auto-encoder loss by hand, carpedm20's network sizes, the state's
//! exact round trip, and the error for a discriminator that is not an auto-encoder.
use lab_nn::prelude::*;
use lab_plugin_testkit::{architecture, loss, CIFAR10};

use crate::loss::{autoencoder_loss, next_k};
use crate::{Began, BeganNetworks};

const CPU: tch::Device = tch::Device::Cpu;

fn scalar(v: f64) -> Tensor {
    Tensor::from(v)
}

#[test]
fn k_moves_by_lambda_times_the_balance_and_stays_in_the_unit_interval() {
    // k + λ_k·(γ·L(x) − L(G(z))) = 0.5 + 0.001·(0.5·0.2 − 0.05).
    let k = next_k(&scalar(0.5), &scalar(0.2), &scalar(0.05), 0.5, 0.001).double_value(&[]);
    assert!((k - 0.50005).abs() < 1e-12, "{k}");
    assert_eq!(next_k(&scalar(0.9999), &scalar(1.0), &scalar(0.0), 1.0, 0.5).double_value(&[]), 1.0);
    assert_eq!(next_k(&scalar(0.0), &scalar(0.0), &scalar(1.0), 0.5, 0.001).double_value(&[]), 0.0);
}

#[test]
fn the_autoencoder_loss_is_the_mean_absolute_error() {
    let v = Tensor::from_slice(&[1.0f32, -1.0, 0.5, 0.0]).reshape([1, 1, 2, 2]);
    let r = Tensor::from_slice(&[0.5f32, -1.0, 1.0, -0.25]).reshape([1, 1, 2, 2]);
    assert!((autoencoder_loss(&v, &r).double_value(&[]) - (0.5 + 0.0 + 0.5 + 0.25) / 4.0).abs() < 1e-7);
}

#[test]
fn the_networks_have_carpedm20s_sizes() {
    let arch = architecture::create::<BeganNetworks>("", CIFAR10).unwrap();
    let count = |name| architecture::ArchitectureUnderTest::parameter_count(&arch.build(name).unwrap()).unwrap();
    let conv = |i: i64, o: i64| i * o * 9 + o;
    let fc = |i: i64, o: i64| i * o + o;
    // models.py at 32 px, hidden_num n = 64, z_num = 64, repeat_num = 3, 8×8 bottleneck.
    let decoder = |input: i64| fc(input, 64 * 8 * 8) + 3 * 2 * conv(64, 64) + conv(64, 3);
    let encoder = conv(3, 64)
        + (2 * conv(64, 64) + conv(64, 64))
        + (conv(64, 128) + conv(128, 128) + conv(128, 128))
        + (conv(128, 192) + conv(192, 192))
        + fc(192 * 8 * 8, 64);
    assert_eq!(count("generator"), decoder(64));
    assert_eq!(count("discriminator"), encoder + decoder(64));
    let mut d = arch.build("discriminator").unwrap();
    let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, CPU));
    let out = d.forward(&[x], true).unwrap();
    assert_eq!((out[0].size(), out[1].size()), (vec![2, 3, 32, 32], vec![2, 64]));
    // 28 px: a 7×7 bottleneck, the same three blocks.
    let arch = architecture::create::<BeganNetworks>("channels = 8", lab_plugin_testkit::FASHION_MNIST).unwrap();
    let mut g = arch.build("generator").unwrap();
    let z = arch.latents(3).unwrap();
    assert!(z.abs().max().double_value(&[]) <= 1.0, "z ~ U(-1, 1)");
    assert_eq!(g.forward(&[z], true).unwrap()[0].size(), [3, 1, 28, 28]);
}

#[test]
fn k_round_trips_exactly_through_the_checkpoint_state() {
    let mut began = loss::create::<Began>("").unwrap();
    assert!(began.has_state_methods());
    began.load_state("{\"k\":0.12345678901234568}").unwrap();
    let state = began.state().unwrap();
    let k: f64 = state.trim_start_matches("{\"k\":").trim_end_matches('}').parse().unwrap();
    assert_eq!(k.to_bits(), 0.123_456_789_012_345_68_f64.to_bits(), "{state}");
    let err = began.load_state("{\"k_t\": 1}").err().unwrap();
    assert!(err.to_string().starts_with("the `began` loss's state should be {\"k\": <number>}"), "{err}");
}

#[test]
fn a_discriminator_that_is_not_an_autoencoder_is_named() {
    let mut began = loss::create::<Began>("").unwrap();
    let mut host = loss::FakeLossHost::new("GD");
    let err = host.groups(&mut began).err().unwrap();
    assert_eq!(
        err.to_string(),
        "the `began` loss needs an auto-encoder discriminator (its first output an image of the input's shape [3, 1, 2, 2], found [3, 1]): use architecture `began`"
    );
    let err = loss::create::<Began>("gamma = 1.5").err().unwrap();
    assert_eq!(err.to_string(), "key `gamma`: expected a number in [0, 1], found 1.5");
}
