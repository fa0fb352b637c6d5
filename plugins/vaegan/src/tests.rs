//! The gating rule against the official code's cases, the three losses against a hand
//! computation, and the authors' MNIST network sizes.
use lab_nn::prelude::*;
use lab_plugin_testkit::{architecture, loss, FASHION_MNIST};

use crate::{Gate, VaeGan, VaeGanLoss};

#[test]
fn gating_follows_the_equilibrium_rule() {
    let (e, m) = (0.68, 0.35);
    let both = Gate { discriminator: true, decoder: true };
    assert_eq!(Gate::decide(0.7, 0.7, e, m), both, "inside the band: both step");
    // D too good on either side (a cost below 0.33): D rests.
    assert_eq!(Gate::decide(0.2, 0.7, e, m), Gate { discriminator: false, decoder: true });
    assert_eq!(Gate::decide(0.7, 0.3, e, m), Gate { discriminator: false, decoder: true });
    // D too weak (a cost above 1.03): the decoder rests.
    assert_eq!(Gate::decide(1.2, 0.7, e, m), Gate { discriminator: true, decoder: false });
    // Both would rest: both step.
    assert_eq!(Gate::decide(0.2, 1.2, e, m), both);
    assert_eq!(Gate::decide(0.0, 9.0, e, 0.0), both, "margin 0: no gating");
}

#[test]
fn the_networks_are_the_authors_mnist_mlps() {
    let arch = architecture::create::<VaeGan>("", FASHION_MNIST).unwrap();
    let count = |name| architecture::ArchitectureUnderTest::parameter_count(&arch.build(name).unwrap()).unwrap();
    let block = |i: i64| i * 1024 + 1024 + 2 * 1024;
    assert_eq!(count("encoder"), block(784) + block(1024) + 2 * (1024 * 128 + 128));
    assert_eq!(count("generator"), block(128) + block(1024) + (1024 * 784 + 784));
    assert_eq!(count("discriminator"), block(784) + block(1024) + (1024 + 1));
    let mut d = arch.build("discriminator").unwrap();
    let out = d.forward(&[Tensor::rand([3, 1, 28, 28], (Kind::Float, tch::Device::Cpu))], true).unwrap();
    assert_eq!((out[0].size(), out[1].size()), (vec![3], vec![3, 1024]));
    let err = architecture::create::<VaeGan>("recon_depth = 4", FASHION_MNIST).err().unwrap();
    assert_eq!(
        err.to_string(),
        "key `recon_depth`: expected 3 (after D's first block) or 6 (after its second), found 4"
    );
}

/// Float32 `[rows, cols]` from a row-major slice.
fn matrix(values: &[f32], cols: i64) -> Tensor {
    Tensor::from_slice(values).reshape([-1, cols])
}

/// The fake networks: a linear encoder with log σ² = −60 (so z = μ to float precision and the
/// test needs no random draw), a tanh decoder from one latent, and a discriminator whose
/// features are centred on the batch it is given (batch norm without its scale), so a loss
/// computed on joint batches and one computed on separate batches differ.
struct Fakes {
    encoder: Tensor,
    decoder: (Tensor, Tensor),
    discriminator: (Tensor, Tensor, f64),
}

impl Fakes {
    fn new() -> Self {
        Self {
            encoder: matrix(&[0.5, -0.25, 1.0, 0.3], 1),
            decoder: (matrix(&[1.0, -0.5, 0.25, 0.8], 4), matrix(&[0.1, 0.0, -0.2, 0.3], 4)),
            discriminator: (matrix(&[0.5, -1.0, 0.2, 0.7, 1.0, 0.4, -0.3, 0.25], 2), matrix(&[0.8, -1.2], 1), 0.1),
        }
    }
    fn encode(&self, x: &Tensor) -> Vec<Tensor> {
        let mu = x.flatten(1, -1).matmul(&self.encoder);
        let logvar = mu.zeros_like() - 60.0;
        vec![mu, logvar]
    }
    fn decode(&self, z: &Tensor) -> Tensor {
        (z.matmul(&self.decoder.0) + &self.decoder.1).tanh().reshape([-1, 1, 2, 2])
    }
    fn discriminate(&self, x: &Tensor) -> Vec<Tensor> {
        let h = x.flatten(1, -1).matmul(&self.discriminator.0);
        let features = &h - h.mean_dim(0, true, Kind::Float);
        let logits = (features.matmul(&self.discriminator.1) + self.discriminator.2).view([-1]);
        vec![logits, features]
    }
}

#[test]
fn the_three_losses_match_a_hand_computation_on_joint_batches() {
    let fakes = std::rc::Rc::new(Fakes::new());
    let mut host = loss::FakeLossHost::new(crate::loss::PHASE);
    let x = host.real.shallow_clone();
    let f = fakes.clone();
    host.networks.insert("encoder".into(), Box::new(move |i: &[Tensor]| f.encode(&i[0])));
    let f = fakes.clone();
    host.networks.insert("generator".into(), Box::new(move |i: &[Tensor]| vec![f.decode(&i[0])]));
    let f = fakes.clone();
    host.networks.insert("discriminator".into(), Box::new(move |i: &[Tensor]| f.discriminate(&i[0])));
    let (w, eps) = (1e-2, 1e-3);
    let mut vaegan = loss::create::<VaeGanLoss>("recon_vs_gan_weight = 1e-2\nmargin = 0").unwrap();
    let groups = host.groups(&mut vaegan).unwrap();
    let by_name = |name: &str| {
        let group = groups.iter().find(|g| g.0 == [name.to_string()]).unwrap_or_else(|| panic!("a group for {name}"));
        group.1.as_ref().expect("a loss, not a skip").double_value(&[])
    };

    // By hand, from the official `model/aegan.py`: z = μ (σ ≈ 0), x̃ = Dec(μ), x_p = Dec(0)
    // (the fake context's prior draw is 0); Dis_l on [x̃; x] and D on [x; x_p], each one batch.
    let n = 3;
    let mu = &fakes.encode(&x)[0];
    let kl = (mu.square() * 0.5 + (-60.0f64).exp() * 0.5 - 0.5 + 30.0).sum(Kind::Float).double_value(&[]) / n as f64;
    let x_tilde = fakes.decode(mu);
    let features = &fakes.discriminate(&Tensor::cat(&[&x_tilde, &x], 0))[1];
    let llike_of = |a: &Tensor, b: &Tensor| (a - b).square().sum(Kind::Float).double_value(&[]) * 0.5 / n as f64;
    let llike = llike_of(&features.narrow(0, 0, n), &features.narrow(0, n, n));
    let x_p = fakes.decode(&Tensor::zeros([n, 1], (Kind::Float, tch::Device::Cpu)));
    let d = fakes.discriminate(&Tensor::cat(&[&x, &x_p], 0))[0].sigmoid();
    let log_real = (d.narrow(0, 0, n) + eps).log().mean(Kind::Float).double_value(&[]);
    let log_fake = (-d.narrow(0, n, n) + 1.0 + eps).log().mean(Kind::Float).double_value(&[]);

    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * (1.0 + b.abs());
    assert_eq!(groups.len(), 3, "one loss per network");
    assert!(close(by_name("encoder"), kl + llike), "encoder: KL + L_llike, no GAN term");
    assert!(close(by_name("generator"), w * llike + (1.0 - w) * log_fake), "decoder: w·L_llike + (1 − w)·log(1 − D)");
    assert!(close(by_name("discriminator"), -(0.5 * log_real + 0.5 * log_fake)), "D: the weighted GAN term");
    assert!(close(host.logged("vaegan/llike").unwrap(), llike));
    assert!(close(host.logged("vaegan/real_cost").unwrap(), -log_real));
    assert!(close(host.logged("vaegan/fake_cost").unwrap(), -log_fake));

    // The joint batches matter: the same terms on separately normalised batches differ, so
    // this test tells the two apart.
    let apart = llike_of(&fakes.discriminate(&x_tilde)[1], &fakes.discriminate(&x)[1]);
    assert!((apart - llike).abs() > 1e-2, "separate batches give L_llike {apart}, joint ones {llike}");
}

#[test]
fn the_conv_networks_are_the_authors_cifar_networks_for_one_channel() {
    // `architectures.img32x32` with n_channels = 1 and n_hidden = 128, counted layer by layer
    // from its list: 5×5 kernels; no bias before a batch norm; γ and β per normalised channel.
    let conv = |input: i64, output: i64, bias: bool| 25 * input * output + if bias { output } else { 0 };
    let bn = |c: i64| 2 * c;
    let encoder = conv(1, 64, false)
        + bn(64)
        + conv(64, 128, false)
        + bn(128)
        + conv(128, 256, false)
        + bn(256)
        + 256 * 16 * 1024
        + bn(1024)
        + 2 * (1024 * 128 + 128);
    let decoder = 128 * 256 * 16
        + bn(256 * 16)
        + conv(256, 192, false)
        + bn(192)
        + conv(192, 128, false)
        + bn(128)
        + conv(128, 32, false)
        + bn(32)
        + conv(32, 1, true);
    let discriminator = conv(1, 32, true)
        + conv(32, 128, false)
        + bn(128)
        + conv(128, 192, false)
        + bn(192)
        + conv(192, 256, false)
        + bn(256)
        + 256 * 16 * 512
        + bn(512)
        + (512 + 1);
    let arch = architecture::create::<VaeGan>("networks = \"conv\"", FASHION_MNIST).unwrap();
    let count = |name| architecture::ArchitectureUnderTest::parameter_count(&arch.build(name).unwrap()).unwrap();
    assert_eq!((count("encoder"), count("generator"), count("discriminator")), (encoder, decoder, discriminator));
    assert_eq!(encoder, 5_485_248, "the reference encoder, summed by hand");

    // 28×28 runs the chain 28 → 14 → 7 → 4 and back; the CIFAR run's similarity layer (6) is
    // the third convolution's output at 7×7, before its batch norm.
    let cpu = (Kind::Float, tch::Device::Cpu);
    let x = Tensor::rand([3, 1, 28, 28], cpu) * 2.0 - 1.0;
    let q = arch.build("encoder").unwrap().forward(&[x.shallow_clone()], true).unwrap();
    assert_eq!((q[0].size(), q[1].size()), (vec![3, 128], vec![3, 128]));
    let image = arch.build("generator").unwrap().forward(&[q[0].shallow_clone()], true).unwrap().remove(0);
    assert_eq!(image.size(), vec![3, 1, 28, 28]);
    assert!(image.abs().max().double_value(&[]) <= 1.0, "tanh output");
    let d = arch.build("discriminator").unwrap().forward(&[x], true).unwrap();
    assert_eq!((d[0].size(), d[1].size()), (vec![3], vec![3, 192 * 7 * 7]));

    // A quarter of the width, and the refusals.
    let narrow =
        architecture::create::<VaeGan>("networks = \"conv\"\nwidth = 0.25\nrecon_depth = 2", FASHION_MNIST).unwrap();
    let d = narrow.build("discriminator").unwrap().forward(&[Tensor::rand([2, 1, 28, 28], cpu)], true).unwrap();
    assert_eq!(d[1].size(), vec![2, 8 * 28 * 28], "after the first convolution's ReLU");
    let err = |config: &str| architecture::create::<VaeGan>(config, FASHION_MNIST).err().unwrap().to_string();
    assert_eq!(
        err("networks = \"conv\"\nrecon_depth = 16"),
        "key `recon_depth`: expected a layer of D from 1 to 15 (the CIFAR run: 6), found 16"
    );
    assert_eq!(err("networks = \"resnet\""), "key `networks`: expected `mlp` or `conv`, found `resnet`");
    assert_eq!(
        err("networks = \"conv\"\nwidth = 0"),
        "key `width`: expected a positive factor (1: the reference), found 0"
    );
}

#[test]
fn weights_start_as_the_code_draws_them() {
    // deeppy's AutoFiller: uniform in ±1/√(3·fan_in), so std 1/(3·√fan_in); biases at 0.
    let _lock = lab_plugin_testkit::rng_lock();
    tch::manual_seed(0);
    let arch = architecture::create::<VaeGan>("networks = \"conv\"", FASHION_MNIST).unwrap();
    let d = arch.build("discriminator").unwrap();
    let tensors: std::collections::BTreeMap<String, Tensor> =
        d.tensors().unwrap().into_iter().map(|(name, t, _)| (name, t)).collect();
    let fc = &tensors["fc.weight"];
    let fan_in: f64 = 256.0 * 16.0;
    let bound = 1.0 / (3.0 * fan_in).sqrt();
    assert!(fc.abs().max().double_value(&[]) <= bound);
    let std = fc.std(true).double_value(&[]);
    assert!((std / (1.0 / (3.0 * fan_in.sqrt())) - 1.0).abs() < 0.01, "std {std}");
    let conv = &tensors["conv1.weight"];
    assert!(conv.abs().max().double_value(&[]) <= 1.0 / (3.0 * 128.0 * 25.0f64).sqrt());
    for bias in ["conv_in.bias", "out.bias"] {
        assert_eq!(tensors[bias].abs().max().double_value(&[]), 0.0, "{bias}");
    }
    let g = arch.build("generator").unwrap();
    let names: Vec<String> = g.tensors().unwrap().into_iter().map(|(name, _, _)| name).collect();
    assert!(!names.iter().any(|n| n.starts_with("backconv") && n.ends_with("bias")), "{names:?}");
}

#[test]
fn batch_norm_starts_at_unit_scale_and_zero_shift() {
    // deeppy's `BatchNormalization` starts at γ = 1, β = 0; tch's default γ is U(0, 1).
    let _lock = lab_plugin_testkit::rng_lock();
    tch::manual_seed(0);
    for networks in ["mlp", "conv"] {
        let arch = architecture::create::<VaeGan>(&format!("networks = \"{networks}\""), FASHION_MNIST).unwrap();
        let mut norms = 0;
        for net in ["encoder", "generator", "discriminator"] {
            for (name, t, trainable) in arch.build(net).unwrap().tensors().unwrap() {
                let is_norm = name.split('.').rev().nth(1).is_some_and(|layer| layer.contains("bn"));
                if !(is_norm && trainable) {
                    continue;
                }
                let start = if name.ends_with("weight") { 1.0 } else { 0.0 };
                let off = (t - start).abs().max().double_value(&[]);
                assert_eq!(off, 0.0, "{networks} {net} {name} starts away from {start}");
                norms += 1;
            }
        }
        // γ and β of every batch norm: 6 in the MLPs (two blocks a network), 12 in the conv ones.
        let expected = if networks == "mlp" { 12 } else { 24 };
        assert_eq!(norms, expected, "{networks}: batch-norm parameters found");
    }
}

#[test]
fn edge_energy_sums_squared_neighbour_differences_and_blur_lowers_it() {
    // One 1×2×3 image [[0, 1, 3], [2, 2, 2]]: across (1² + 2²) + (0 + 0), down 2² + 1² + 1².
    let x = Tensor::from_slice(&[0.0f32, 1.0, 3.0, 2.0, 2.0, 2.0]).reshape([1, 1, 2, 3]);
    assert_eq!(crate::model::edge_energy(&x), 5.0 + 6.0);
    let image = Tensor::rand([4, 1, 28, 28], (Kind::Float, tch::Device::Cpu));
    let blurred = image.avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None::<i64>);
    assert!(crate::model::edge_energy(&blurred) < 0.5 * crate::model::edge_energy(&image));
}
