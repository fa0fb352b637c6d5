//! The official MLP sizes, the joint discriminator's two inputs, the 1-NN probe on constructed
//! features, and the model's measures through the real evaluation context.
use lab_nn::prelude::*;
use lab_plugin_testkit::{architecture, images, rng_lock, FASHION_MNIST};

use crate::probe::{linear_probe_accuracy, nearest_neighbour_accuracy};
use crate::Bigan;

const CPU: tch::Device = tch::Device::Cpu;

#[test]
fn the_networks_have_the_official_mlp_sizes() {
    let arch = architecture::create::<Bigan>("", FASHION_MNIST).unwrap();
    let count = |name| architecture::ArchitectureUnderTest::parameter_count(&arch.build(name).unwrap()).unwrap();
    // No biases, BN without gain or bias (--nogain --nobias): only the weight matrices count.
    let (x, h, z) = (784, 1024, 50);
    assert_eq!(count("generator"), z * h + h * h + z * h + h * x);
    assert_eq!(count("encoder"), x * h + h * h + h * z);
    assert_eq!(count("discriminator"), x * h + h * h + z * h + h);
}

#[test]
fn the_discriminator_takes_an_image_and_its_code() {
    let _rng = rng_lock();
    tch::manual_seed(0);
    let arch = architecture::create::<Bigan>("hidden = 32\nz_dim = 4", FASHION_MNIST).unwrap();
    let (mut g, mut e, mut d) =
        (arch.build("generator").unwrap(), arch.build("encoder").unwrap(), arch.build("discriminator").unwrap());
    let z = arch.latents(6).unwrap();
    assert!(z.abs().max().double_value(&[]) <= 1.0);
    let x = g.forward(&[z.shallow_clone()], true).unwrap().remove(0);
    assert_eq!(x.size(), [6, 1, 28, 28]);
    let ex = e.forward(&[x.shallow_clone()], true).unwrap().remove(0);
    assert_eq!(ex.size(), [6, 4]);
    let logit = d.forward(&[x, ex], true).unwrap().remove(0);
    assert_eq!(logit.size(), [6]);
    // The code reaches D: another z, another logit for the same image.
    let x = images(6, FASHION_MNIST);
    let a = d.forward(&[x.shallow_clone(), z.shallow_clone()], false).unwrap().remove(0);
    let b = d.forward(&[x.shallow_clone(), -z], false).unwrap().remove(0);
    assert!(!a.allclose(&b, 1e-6, 1e-6, false));
    let err = d.forward(&[x], true).err().unwrap();
    assert!(err.to_string().contains("takes [x, z]"), "{err}");
}

#[test]
fn nearest_neighbour_accuracy_by_hand() {
    let memory = Tensor::from_slice(&[0.0f32, 0.0, 10.0, 10.0, 0.0, 10.0]).reshape([3, 2]);
    let labels = Tensor::from_slice(&[0i64, 1, 2]);
    let query = Tensor::from_slice(&[1.0f32, 1.0, 9.0, 9.0, 1.0, 9.0, 6.0, 6.0]).reshape([4, 2]);
    // Nearest: 0, 1, 2, 1; the last query is labelled 2, so 3 of 4 are right.
    let query_labels = Tensor::from_slice(&[0i64, 1, 2, 2]);
    assert_eq!(nearest_neighbour_accuracy(&memory, &labels, &query, &query_labels), 0.75);
}

#[test]
fn the_linear_probe_separates_linearly_separable_classes_and_not_xor() {
    let _rng = rng_lock();
    tch::manual_seed(2);
    let x = Tensor::randn([400, 2], (Kind::Float, CPU));
    let a = x.select(1, 0);
    let b = x.select(1, 1);
    // Linear: the sign of the first feature. XOR of the two signs: no line does better than chance.
    let linear = a.gt(0.0).to_kind(Kind::Int64);
    let xor = a.gt(0.0).logical_xor(&b.gt(0.0)).to_kind(Kind::Int64);
    let (train, test) = (x.narrow(0, 0, 200), x.narrow(0, 200, 200));
    let acc = |y: &Tensor| linear_probe_accuracy(&train, &y.narrow(0, 0, 200), &test, &y.narrow(0, 200, 200), 300);
    assert!(acc(&linear) > 0.95, "{}", acc(&linear));
    assert!(acc(&xor) < 0.7, "{}", acc(&xor));
    // 1-NN has no such limit.
    assert!(nearest_neighbour_accuracy(&train, &xor.narrow(0, 0, 200), &test, &xor.narrow(0, 200, 200)) > 0.85);
}

#[test]
fn the_model_measures_its_encoder_beside_a_fresh_one() {
    let _rng = rng_lock();
    tch::manual_seed(1);
    let arch = architecture::create::<Bigan>("hidden = 32\nz_dim = 8\neval_count = 200", FASHION_MNIST).unwrap();
    let nets = ["generator", "encoder", "discriminator"].into_iter().map(|n| (n, arch.build(n).unwrap())).collect();
    // Two classes that differ in brightness: even an untrained encoder separates them well.
    let y = Tensor::arange(300, (Kind::Int64, CPU)).remainder(2);
    let x = (Tensor::rand([300, 1, 28, 28], (Kind::Float, CPU)) * 0.2
        + y.to_kind(Kind::Float).view([-1, 1, 1, 1]) * 1.5
        - 1.0)
        .clamp(-1.0, 1.0);
    let values = arch.evaluate(nets, (&x, Some(&y)), (&x, Some(&y))).unwrap();
    let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "probe_1nn",
            "probe_1nn_random_encoder",
            "probe_linear",
            "probe_linear_random_encoder",
            "reconstruction_ratio"
        ]
    );
    assert!(values[..4].iter().all(|v| v.value > 0.9), "{values:?}");
    assert!(values[4].value > 0.0 && !values[4].higher_is_better);
}
