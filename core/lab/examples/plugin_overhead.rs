//! The cost of the plugin boundary: the same DCGAN forward, called through a `dlopen`ed plugin
//! (C function tables, tensor handles) and built in-process from the plugin crate's rlib.
//!
//!     ./lab build && cargo run --release --example plugin_overhead -- [calls]
use std::time::Instant;

use lab::plugins::Registry;
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec};
use lab_plugin_dcgan::Dcgan;
use tch::{Device, Kind, Tensor};

fn time_per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..calls / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_secs_f64() / calls as f64 * 1e6
}

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    tch::set_num_threads(1);
    let env = BuildEnv::from_device(Device::Cpu, DataSpec { channels: 1, height: 28, width: 28, num_classes: 0 });
    let text = "g_channels = 1\nd_channels = 1\nz_dim = 1";
    let release = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release");
    let registry = Registry::discover(&[release]).expect("plugins load");
    let config: toml::Table = toml::from_str(text).unwrap();

    tch::manual_seed(0);
    let arch = registry.architecture("dcgan", &config, env).expect("dcgan");
    let mut through_plugin = arch.build("generator").unwrap();
    tch::manual_seed(0);
    let local = Dcgan::create(lab_plugin_api::config::parse(text).unwrap(), env).unwrap();
    let mut in_process = local.build("generator").unwrap();

    let z = Tensor::randn([1, 1], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| through_plugin.forward(&[z.shallow_clone()], false).unwrap().remove(0));
    let b = tch::no_grad(|| in_process.forward(&[z.shallow_clone()], false).unwrap().remove(0));
    assert!(a.equal(&b), "both paths must compute the same network");

    let mut plugin_us = Vec::new();
    let mut local_us = Vec::new();
    for _ in 0..5 {
        plugin_us.push(time_per_call(calls, || {
            tch::no_grad(|| through_plugin.forward(&[z.shallow_clone()], false).unwrap());
        }));
        local_us.push(time_per_call(calls, || {
            tch::no_grad(|| in_process.forward(&[z.shallow_clone()], false).unwrap());
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, l) = (median(&mut plugin_us), median(&mut local_us));
    println!(
        "network: DCGAN generator, 1 channel, batch 1 (28x28 output), CPU, 1 thread; {calls} calls x 5 rounds, median"
    );
    println!("through the plugin boundary: {p:.2} us/call");
    println!("in-process (rlib):           {l:.2} us/call");
    println!("boundary cost:               {:.2} us/call ({:+.1}%)", p - l, (p / l - 1.0) * 100.0);
}
