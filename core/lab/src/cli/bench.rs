//! `lab bench optimizer`: the optimizer step alone, per-tensor against fused, on an
//! architecture's real parameter set (BigGAN-CIFAR's by default: 36 tensors, 4.3M parameters in G; 23, 4.2M in D).
//! Side by side in one invocation, in alternating rounds, with the median and the ratio, as
//! BENCHMARKS.md asks of every speed claim.
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use tch::{Device, Tensor};

use crate::config::{parse_device, OptimConfig};
use crate::plugins::Registry;
use crate::train::Optimizer;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Per-tensor vs fused optimizer steps on an architecture's parameters, µs per step.
    Optimizer(BenchOptimizerArgs),
}

#[derive(Debug, Args)]
pub struct BenchOptimizerArgs {
    /// The architecture plugin whose networks are stepped.
    #[arg(long, default_value = "biggan")]
    pub architecture: String,
    /// Its `[model.config]` entries, `key=value` with TOML values (default: the plugin's).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// The data shape it is built for, `CxHxW`.
    #[arg(long, default_value = "3x32x32")]
    pub shape: String,
    /// Classes of the data (0: unconditional).
    #[arg(long, default_value_t = 10)]
    pub classes: i64,
    /// Optimizer kind: adam, rmsprop, sgd or adagrad.
    #[arg(long, default_value = "adam")]
    pub kind: String,
    /// Timed steps per round.
    #[arg(long, default_value_t = 50)]
    pub steps: u32,
    /// Rounds; each times both paths, alternating which goes first.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn bench(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Optimizer(args) => optimizer(args),
    }
}

/// Microseconds per step of `steps` updates (after two untimed ones) of an optimizer over
/// copies of `params` with the fixed `grads`.
fn time_steps(params: &[Tensor], grads: &[Tensor], kind: &str, fused: bool, steps: u32, device: Device) -> f64 {
    let settings = OptimConfig { kind: kind.into(), ..OptimConfig::default() }.defaults();
    let copies: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
    let mut opt = Optimizer::new(settings, copies, 1.0, 1_000_000, fused);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for step in 0..2 {
        opt.step(grads, step);
    }
    sync();
    let start = Instant::now();
    for step in 0..steps as u64 {
        opt.step(grads, 2 + step);
    }
    sync();
    start.elapsed().as_secs_f64() * 1e6 / steps as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn optimizer(args: BenchOptimizerArgs) -> anyhow::Result<ExitCode> {
    let device = parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let dims: Vec<i64> = args
        .shape
        .split('x')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--shape {}: expected CxHxW, e.g. 3x32x32", args.shape))?;
    let [channels, height, width] = dims[..] else {
        anyhow::bail!("--shape {}: expected CxHxW, e.g. 3x32x32", args.shape)
    };
    let config: toml::Table = toml::from_str(&args.config.join("\n"))
        .map_err(|e| anyhow::anyhow!("--config: expected key=value lines with TOML values: {e}"))?;
    let registry = Registry::discover(&[])?;
    let spec = lab_plugin_api::DataSpec { channels, height, width, num_classes: args.classes };
    let env = lab_plugin_api::BuildEnv::from_device(device, spec);
    tch::manual_seed(0);
    let arch = registry.architecture(&args.architecture, &config, env)?;
    let info = arch.info().map_err(|e| anyhow::anyhow!("architecture `{}`: {e}", args.architecture))?;
    println!(
        "{} optimizer step on {}'s networks ({}), {} steps × {} rounds, alternating; µs per step",
        args.kind, args.architecture, args.device, args.steps, args.rounds
    );
    println!("| network | tensors | parameters | per-tensor (µs) | fused (µs) | per-tensor / fused |");
    println!("|---|--:|--:|--:|--:|--:|");
    for network in &info.networks {
        let handle = arch.build(&network.name).map_err(|e| anyhow::anyhow!("network `{}`: {e}", network.name))?;
        let params: Vec<Tensor> = handle.tensors()?.into_iter().filter(|t| t.2).map(|t| t.1).collect();
        if params.is_empty() {
            continue;
        }
        let grads: Vec<Tensor> = params.iter().map(|p| Tensor::randn_like(p) * 1e-3).collect();
        let (mut single, mut fused) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let time = |f: bool| time_steps(&params, &grads, &args.kind, f, args.steps, device);
            if round % 2 == 0 {
                single.push(time(false));
                fused.push(time(true));
            } else {
                fused.push(time(true));
                single.push(time(false));
            }
        }
        let count: i64 = params.iter().map(|p| p.numel() as i64).sum();
        let rounds = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" / ");
        let (s, f) = (median(single.clone()), median(fused.clone()));
        println!("| {} | {} | {count} | {s:.0} | {f:.0} | {:.2}× |", network.name, params.len(), s / f);
        eprintln!("  {}: per-tensor rounds {}; fused rounds {}", network.name, rounds(&single), rounds(&fused));
    }
    Ok(ExitCode::SUCCESS)
}
