//! Unit tests of the whole architecture through the plugin trait (the rlib is linked directly).
use lab_plugin_api::tch::{self, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Network};
use lab_plugin_testkit::network::{assert_seed_decides_weights, trainable_count};

use crate::{Dcgan, DcganConfig};

fn env(channels: i64, side: i64, num_classes: i64) -> BuildEnv {
    BuildEnv::from_device(Device::Cpu, DataSpec { channels, height: side, width: side, num_classes })
}

fn dcgan(config: DcganConfig, env: BuildEnv) -> Dcgan {
    <Dcgan as ArchitecturePlugin>::create(config, env).expect("valid config")
}

fn build(arch: &Dcgan, name: &str) -> Box<dyn Network> {
    arch.build(name).expect("known network")
}

fn names(net: &dyn Network) -> Vec<String> {
    net.tensors().into_iter().map(|(name, _, _)| name).collect()
}

fn labels(n: i64, classes: i64) -> Tensor {
    Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(classes)
}

#[test]
fn output_shapes_at_every_resolution() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    for (channels, side) in [(1, 28), (3, 28), (1, 32), (3, 32), (3, 64)] {
        let arch = dcgan(DcganConfig::default(), env(channels, side, 0));
        let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
        let z = Tensor::randn([5, 100], (Kind::Float, Device::Cpu));
        let x = g.forward(&[z], true).unwrap().remove(0);
        assert_eq!(x.size(), [5, channels, side, side]);
        assert!(x.abs().max().double_value(&[]) <= 1.0, "tanh output stays in [-1, 1]");
        let out = d.forward(&[x], true).unwrap();
        assert_eq!(out[0].size(), [5], "one logit per image at {side}x{side}x{channels}");
        // The last feature map has 4C channels at 28 (7x7) and 8C otherwise (4x4).
        let features = if side == 28 { 256 } else { 512 };
        assert_eq!(out[1].size(), [5, features], "pooled features");
    }
}

#[test]
fn latent_may_be_a_1x1_map() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = dcgan(DcganConfig::default(), env(3, 32, 0));
    let mut g = build(&arch, "generator");
    let z = Tensor::randn([2, 100, 1, 1], (Kind::Float, Device::Cpu));
    assert_eq!(g.forward(&[z], false).unwrap()[0].size(), [2, 3, 32, 32]);
}

#[test]
fn conditional_forward_uses_the_labels() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    for d_norm in ["batch", "spectral", "none"] {
        let config = DcganConfig { conditional: true, d_norm: d_norm.into(), ..Default::default() };
        let arch = dcgan(config, env(1, 28, 10));
        let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
        let z = Tensor::randn([4, 100], (Kind::Float, Device::Cpu)).repeat([2, 1]);
        let y = Tensor::cat(&[labels(4, 10), labels(4, 10) + 3], 0);
        let x = g.forward(&[z, y.shallow_clone()], false).unwrap().remove(0);
        assert_eq!(x.size(), [8, 1, 28, 28]);
        // Same z, different labels: different images.
        assert!(!x.narrow(0, 0, 4).allclose(&x.narrow(0, 4, 4), 1e-6, 1e-6, false));
        let logits = d.forward(&[x.shallow_clone(), y], false).unwrap().remove(0);
        assert_eq!(logits.size(), [8]);
        let err = d.forward(&[x], false).unwrap_err().to_string();
        assert_eq!(err, "dcgan discriminator is conditional: expected inputs [input, labels], got 1 tensor");
    }
}

#[test]
fn declares_its_classes_and_networks() {
    let _rng = crate::rng_lock();
    let arch = dcgan(DcganConfig { conditional: true, ..Default::default() }, env(3, 32, 10));
    assert_eq!((arch.z_dim(), arch.num_classes()), (100, 10));
    let names: Vec<_> = arch.networks().into_iter().map(|s| (s.name, s.phases)).collect();
    assert_eq!(
        names,
        [("generator".to_string(), vec!["G".to_string()]), ("discriminator".into(), vec!["D".to_string()])]
    );
    assert_eq!(dcgan(DcganConfig::default(), env(3, 32, 10)).num_classes(), 0, "unconditional by default");
}

#[test]
fn projection_embedding_is_a_variable() {
    let _rng = crate::rng_lock();
    let config = DcganConfig { conditional: true, d_norm: "spectral".into(), ..Default::default() };
    let arch = dcgan(config, env(3, 32, 10));
    let d = build(&arch, "discriminator");
    let tensors = d.tensors();
    let embed = tensors.iter().find(|(n, _, _)| n == "embed.weight").expect("projection embedding");
    assert_eq!(embed.1.size(), [10, 512]);
    assert!(tensors.iter().any(|(n, _, trainable)| n == "embed.weight_u" && !trainable));
}

#[test]
fn same_seed_builds_identical_weights() {
    let _rng = crate::rng_lock();
    let arch = dcgan(DcganConfig { d_norm: "spectral".into(), ..Default::default() }, env(3, 32, 0));
    for name in ["generator", "discriminator"] {
        assert_seed_decides_weights(name, || build(&arch, name));
    }
}

#[test]
fn initialisation_follows_dcgan() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = dcgan(DcganConfig::default(), env(3, 32, 0));
    let g = build(&arch, "generator");
    let get = |name: &str| g.tensors().into_iter().find(|(n, _, _)| n == name).unwrap().1;
    let w = get("block1.conv.weight");
    assert!((w.std(true).double_value(&[]) - 0.02).abs() < 1e-3);
    assert!(w.mean(Kind::Float).double_value(&[]).abs() < 1e-3);
    let bn = get("block1.bn.weight");
    assert!((bn.mean(Kind::Float).double_value(&[]) - 1.0).abs() < 0.01);
    assert_eq!(get("block1.bn.bias").abs().sum(Kind::Float).double_value(&[]), 0.0);
    assert_eq!(get("out.bias").abs().sum(Kind::Float).double_value(&[]), 0.0);
}

#[test]
fn variable_names_read_like_the_architecture() {
    let _rng = crate::rng_lock();
    let arch = dcgan(DcganConfig::default(), env(3, 32, 0));
    let g = names(&*build(&arch, "generator"));
    let expected_g = [
        "block1.bn.bias",
        "block1.bn.running_mean",
        "block1.bn.running_var",
        "block1.bn.weight",
        "block1.conv.weight",
        "block2.bn.bias",
        "block2.bn.running_mean",
        "block2.bn.running_var",
        "block2.bn.weight",
        "block2.conv.weight",
        "fc.weight",
        "fc_bn.bias",
        "fc_bn.running_mean",
        "fc_bn.running_var",
        "fc_bn.weight",
        "out.bias",
        "out.weight",
    ];
    assert_eq!(g, expected_g);
    let arch = dcgan(DcganConfig { d_norm: "spectral".into(), ..Default::default() }, env(3, 32, 0));
    let d = names(&*build(&arch, "discriminator"));
    let expected_d = [
        "block1.conv.bias",
        "block1.conv.weight",
        "block1.conv.weight_u",
        "block2.conv.bias",
        "block2.conv.weight",
        "block2.conv.weight_u",
        "block3.conv.bias",
        "block3.conv.weight",
        "block3.conv.weight_u",
        "out.bias",
        "out.weight",
        "out.weight_u",
    ];
    assert_eq!(d, expected_d);
}

#[test]
fn batch_norm_running_stats_are_buffers_updated_only_in_training() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = dcgan(DcganConfig::default(), env(3, 32, 0));
    let mut d = build(&arch, "discriminator");
    let running = || d_tensor(&*d, "block2.bn.running_mean");
    fn d_tensor(net: &dyn Network, name: &str) -> (Tensor, bool) {
        let (_, t, trainable) = net.tensors().into_iter().find(|(n, _, _)| n == name).unwrap();
        (t, trainable)
    }
    let (before, trainable) = running();
    assert!(!trainable);
    let before = before.copy();
    let x = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let a = d.forward(&[x.shallow_clone()], false).unwrap().remove(0);
    let b = d.forward(&[x.shallow_clone()], false).unwrap().remove(0);
    assert!(a.equal(&b), "evaluation is deterministic");
    assert!(d_tensor(&*d, "block2.bn.running_mean").0.equal(&before));
    let _ = d.forward(&[x], true).unwrap();
    assert!(!d_tensor(&*d, "block2.bn.running_mean").0.equal(&before));
}

#[test]
fn gradients_reach_every_generator_parameter() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = dcgan(DcganConfig { conditional: true, ..Default::default() }, env(1, 28, 10));
    let mut g = build(&arch, "generator");
    let z = Tensor::randn([4, 100], (Kind::Float, Device::Cpu));
    g.forward(&[z, labels(4, 10)], true).unwrap()[0].square().sum(Kind::Float).backward();
    for (name, t, trainable) in g.tensors() {
        if trainable {
            assert!(t.grad().defined() && t.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0, "{name}");
        }
    }
}

#[test]
fn parameter_counts_are_stable() {
    let _rng = crate::rng_lock();
    let count = |side, channels| {
        let arch = dcgan(DcganConfig::default(), env(channels, side, 0));
        let g = trainable_count(&*build(&arch, "generator"));
        let d = trainable_count(&*build(&arch, "discriminator"));
        println!("dcgan {side}x{side}x{channels}: G {g} parameters, D {d} parameters");
        (g, d)
    };
    // 28: fc 100→256·7·7, convT 256→128, out 128→1; D: 1→128, 128→256, out 256·7·7→1.
    assert_eq!(count(28, 1), (1_781_505, 539_521));
    // 32: fc 100→512·4·4, convT 512→256→128, out 128→3; D: 3→128→256→512, out 512·4·4→1.
    assert_eq!(count(32, 3), (3_448_579, 2_637_441));
}

#[test]
fn unknown_network_lists_valid_names() {
    let _rng = crate::rng_lock();
    let arch = dcgan(DcganConfig::default(), env(3, 32, 0));
    let err = arch.build("encoder").err().unwrap();
    assert_eq!(err, "dcgan has no network `encoder`; valid names: generator, discriminator");
}

#[test]
fn wrong_input_shapes_are_errors_not_panics() {
    let _rng = crate::rng_lock();
    let arch = dcgan(DcganConfig::default(), env(3, 32, 0));
    let mut g = build(&arch, "generator");
    let err = g.forward(&[Tensor::zeros([2, 64], (Kind::Float, Device::Cpu))], true).unwrap_err().to_string();
    assert_eq!(err, "dcgan generator: z must have shape [N, 100], got [2, 64]");
    let mut d = build(&arch, "discriminator");
    let err = d.forward(&[Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu))], true).unwrap_err().to_string();
    assert_eq!(err, "dcgan discriminator: images must have shape [N, 3, 32, 32], got [2, 1, 28, 28]");
}

#[test]
fn create_reports_config_errors() {
    let _rng = crate::rng_lock();
    let err =
        <Dcgan as ArchitecturePlugin>::create(DcganConfig { resolution: 28, ..Default::default() }, env(3, 32, 0));
    assert_eq!(
        err.unwrap_err().to_string(),
        "key `resolution`: 28 does not match the data, which is 32x32; set it to 0 to follow the data \
         (supported sizes: 28, 32, 64)"
    );
}

#[test]
fn descriptor_carries_the_default_config() {
    let _rng = crate::rng_lock();
    let d = lab_plugin_api::architecture::descriptor::<Dcgan>("0");
    assert_eq!(d.name.as_str(), "dcgan");
    let text = d.default_config.as_str();
    assert!(text.contains("z_dim = 100") && text.contains("d_norm = \"batch\""), "{text}");
}

#[test]
fn leaky_relu_has_slope_one_fifth_and_its_gradient() {
    use lab_plugin_api::tch::{Kind, Tensor};
    let x = Tensor::from_slice(&[-2.0f64, -0.5, 0.25, 3.0]).set_requires_grad(true);
    let y = x.apply(&crate::layers::LEAKY_RELU);
    let values: Vec<f64> = Vec::try_from(&y.detach()).unwrap();
    assert_eq!(values, [-0.4, -0.1, 0.25, 3.0]);
    y.sum(Kind::Double).backward();
    let grad: Vec<f64> = Vec::try_from(&x.grad()).unwrap();
    assert_eq!(grad, [0.2, 0.2, 1.0, 1.0]);
}

#[test]
fn passes_the_test_kit_checks_through_the_plugin_boundary() {
    use lab_plugin_testkit::{architecture, CIFAR10, FASHION_MNIST};
    let arch = architecture::create::<Dcgan>("g_channels = 8\nd_channels = 8", FASHION_MNIST).unwrap();
    let plain = arch.check_gan(3);
    let arch = architecture::create::<Dcgan>(
        "g_channels = 8\nd_channels = 8\nconditional = true\nd_norm = \"spectral\"",
        CIFAR10,
    )
    .unwrap();
    assert_eq!(arch.info().num_classes, 10);
    let conditional = arch.check_gan(3);
    assert!(conditional.generator_parameters > plain.generator_parameters, "the label embedding adds parameters");
    let err = architecture::create::<Dcgan>("resolution = 48", FASHION_MNIST).err().unwrap();
    assert!(err.to_string().starts_with("key `resolution`"), "{err}");
}
