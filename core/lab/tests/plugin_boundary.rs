//! Gradients cross the plugin boundary: a loss computed in the core back-propagates into
//! parameters a plugin created (through a real `dlopen`), and the core's Adam moves them.
use lab::config::OptimConfig;
use lab::plugins::Registry;
use lab::train::Optimizer;
use lab_plugin_api::{BuildEnv, DataSpec};
use tch::{Device, Kind, Tensor};

fn registry() -> Registry {
    // The plugins are built next to the binaries in target/release.
    let release = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release");
    Registry::discover(&[release]).expect("plugins load")
}

#[test]
fn core_loss_trains_plugin_parameters() {
    let registry = registry();
    let env = BuildEnv::from_device(Device::Cpu, DataSpec { channels: 1, height: 28, width: 28, num_classes: 10 });
    let config: toml::Table = toml::from_str("g_channels = 8\nd_channels = 8").unwrap();
    tch::manual_seed(0);
    let arch = registry.architecture("dcgan", &config, env).expect("dcgan builds");
    let mut d = arch.build("discriminator").unwrap();
    let tensors = d.tensors().unwrap();
    let params: Vec<Tensor> = tensors.iter().filter(|t| t.2).map(|t| t.1.shallow_clone()).collect();
    assert!(!params.is_empty());
    let before: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();

    let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let logits = d.forward(&[x], true).unwrap().remove(0);
    // The loss lives in the core; the graph behind `logits` was built inside the plugin.
    let loss = logits.square().mean(Kind::Float);
    loss.backward();
    for (name, p, _) in tensors.iter().filter(|t| t.2) {
        let g = p.grad();
        assert!(g.defined(), "{name} got no gradient");
        assert!(g.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{name} has an all-zero gradient");
    }
    let settings = OptimConfig { lr: 1e-2, ..OptimConfig::default() }.defaults();
    // Fused: the parameters' data moves into one buffer, under the plugin's own tensors.
    let mut opt = Optimizer::new(settings, params.iter().map(Tensor::shallow_clone).collect(), 1.0, 1, true);
    assert!(opt.fused());
    let probe = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let out_before = tch::no_grad(|| d.forward(&[probe.shallow_clone()], false).unwrap().remove(0));
    let grads: Vec<Tensor> = params.iter().map(Tensor::grad).collect();
    opt.step(&grads, 0);
    let out_after = tch::no_grad(|| d.forward(&[probe], false).unwrap().remove(0));
    assert!(!out_after.equal(&out_before), "the plugin's forward does not see the fused update");
    // The plugin sees the update: its own forward now gives a different output for the same input.
    for (p, b) in params.iter().zip(&before) {
        assert!(!p.detach().equal(b), "a parameter did not move");
    }
}

#[test]
fn a_graph_built_in_a_plugin_outlives_the_network() {
    let registry = registry();
    let env = BuildEnv::from_device(Device::Cpu, DataSpec { channels: 1, height: 28, width: 28, num_classes: 0 });
    let arch = registry.architecture("dcgan", &toml::Table::new(), env).unwrap();
    let mut g = arch.build("generator").unwrap();
    let z = Tensor::randn([2, 100], (Kind::Float, Device::Cpu));
    let out = g.forward(&[z], true).unwrap().remove(0);
    let w = g.tensors().unwrap().into_iter().find(|t| t.2).unwrap().1;
    drop(g);
    drop(arch);
    out.sum(Kind::Float).backward();
    assert!(w.grad().defined());
}
