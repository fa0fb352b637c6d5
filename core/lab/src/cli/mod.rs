//! The command line: `lab run`, `lab eval`, `lab plugins`, `lab new-plugin`, `lab report`,
//! `lab sweep`, `lab data fetch` and the rest.
mod augment_preview;
mod battle;
mod bench;
mod eval;
mod features;
mod new_plugin;
mod plugins;
mod report;
mod run;
mod sample;
mod sweep;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A research lab for GANs: reproducible experiments with plugin architectures, losses,
/// augmentations and metrics.
#[derive(Debug, Parser)]
#[command(name = "lab", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Show full plugin error details (e.g. libtorch backtraces).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an experiment: `lab run experiments/quickstart.toml`.
    Run(run::RunArgs),
    /// Evaluate a run's checkpoint: `lab eval runs/<exp>/<run> --metrics fid`.
    Eval(eval::EvalArgs),
    /// Compare two trained GANs by swapping their discriminators (GAM, Im et al. 2016):
    /// `lab battle runs/<a>/<run> runs/<b>/<run>`.
    Battle(battle::BattleArgs),
    /// Export a synthetic dataset: `lab sample runs/<exp>/<run> --n 60000 --out synthetic`.
    Sample(sample::SampleArgs),
    /// Feature networks for metrics: `lab features train --dataset fashion-mnist`.
    #[command(subcommand)]
    Features(features::FeaturesCommand),
    /// List the plugins found on the search path; `lab plugins build` compiles and installs one.
    Plugins(plugins::PluginsArgs),
    /// Write a new plugin crate: `lab new-plugin architecture my-gan`.
    NewPlugin(new_plugin::NewPluginArgs),
    /// Show a batch before and after an augmentation, as a PNG.
    AugmentPreview(augment_preview::AugmentPreviewArgs),
    /// Send MLflow what a run folder holds and the server lacks.
    Sync(sync::SyncArgs),
    /// A paper-style table (Markdown, LaTeX, CSV) and plots: `lab report reports/diffaugment_cifar10.toml`.
    Report(report::ReportArgs),
    /// Run an experiment over a grid of settings and seeds, locally or on Slurm.
    Sweep(sweep::SweepArgs),
    /// Datasets: `lab data fetch cifar10`.
    #[command(subcommand)]
    Data(DataCommand),
    /// Micro-benchmarks: `lab bench optimizer` (per-tensor vs fused steps).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a dataset's canonical archive, or the feature network, and verify its checksum.
    Fetch {
        /// `cifar10`, `fashion-mnist` or `mnist`; or `inception`, the feature network FID, KID, IS
        /// and precision/recall use (to $LAB_FEATURES, else ~/.cache/lab/inception-2015-12-05.pt).
        name: String,
        /// Where datasets live (default: $LAB_DATA, else ~/.cache/lab/datasets).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Build a two-domain stand-in from Fashion-MNIST, offline: `edges2fashion` (paired: Sobel
    /// edges → garment, pix2pix's layout) or `fashion2inverted` (unpaired: garment ↔ inverted,
    /// quarter-turned garment, CycleGAN's layout). Smoke-test domains, not the papers' data sets.
    Make {
        /// `edges2fashion` or `fashion2inverted`.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(crate::data::standin::NAMES))]
        name: String,
        /// Where datasets live (default: $LAB_DATA, else ~/.cache/lab/datasets).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Rebuild it even when it is already there.
        #[arg(long)]
        force: bool,
    },
}

/// Prints an error the way users should see it: the first line of each plugin message unless
/// `--verbose`, then exits non-zero.
pub fn report(err: &anyhow::Error, verbose: bool) {
    let text = format!("{err:#}");
    let shown = if verbose { text } else { brief(&text) };
    eprintln!("error: {shown}");
}

/// Drops libtorch's C++ backtraces from an error, keeping its one-line message. tch reports
/// libtorch errors as `Torch("<message>\nException raised from ...\nframe #0: ...")`, sometimes
/// with the newlines escaped.
pub fn brief(text: &str) -> String {
    let mut out = Vec::new();
    let mut cut = false;
    for line in text.lines() {
        if line.starts_with("frame #") {
            cut = true;
            continue;
        }
        // Allocation failures ("[enforce fail at alloc_cpu.cpp]") have no "Exception raised from":
        // their frames follow at once.
        let marker = ["\\nException raised from", "Exception raised from", "\\nframe #"]
            .iter()
            .filter_map(|m| line.find(m))
            .min();
        match marker {
            Some(i) => {
                cut = true;
                let mut kept = line[..i].replace("called `Result::unwrap()` on an `Err` value: Torch(\"", "libtorch: ");
                if let Some(a) = (crate::failure::TorchFailure { message: kept.clone() }).allocation() {
                    kept.push_str(&format!(" ({} in all)", a.requested));
                }
                if !kept.trim().is_empty() {
                    out.push(kept);
                }
            }
            None if cut && line.trim().is_empty() => {}
            None => out.push(line.to_string()),
        }
    }
    let mut s = out.join("\n");
    if cut {
        s.push_str("\n(libtorch backtrace omitted; run with --verbose to see it)");
    }
    s
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose { "lab=debug" } else { "lab=warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        // Colour codes only for a person reading a terminal, not in piped logs and Slurm files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let verbose = cli.verbose;
    // The last resort: a libtorch failure no guard nearer to it caught still ends as an error
    // that names what failed, not as a Rust panic with a backtrace.
    let result = crate::failure::catch(move || dispatch(cli.command)).unwrap_or_else(|failure| {
        Err(match failure.allocation() {
            Some(a) => anyhow::anyhow!(
                "libtorch could not allocate {}{}; lower the sizes in the experiment (train.batch_size, eval.batch_size, \
                 eval.num_samples, log.samples) or the command's --n / --batch-size",
                a.requested,
                a.device_state.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
            None => anyhow::anyhow!(
                "internal error: {}\nThis is a bug in lab; please report it with the command and the output of \
                 RUST_BACKTRACE=1 lab --verbose ...",
                failure.message
            ),
        })
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e, verbose);
            if e.downcast_ref::<crate::train::TrainError>()
                .is_some_and(|t| matches!(t, crate::train::TrainError::Interrupted { .. }))
            {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs one command.
fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Plugins(args) => plugins::plugins(args),
        Command::NewPlugin(args) => new_plugin::new_plugin(args),
        Command::Sync(args) => sync::sync(args),
        Command::Eval(args) => eval::eval(args),
        Command::Battle(args) => battle::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Report(args) => report::report(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Features(cmd) => features::features(cmd),
        Command::AugmentPreview(args) => augment_preview::augment_preview(args),
        Command::Data(DataCommand::Fetch { name, root }) => fetch(&name, root),
        Command::Data(DataCommand::Make { name, root, force }) => make(&name, root, force),
        Command::Bench(cmd) => bench::bench(cmd),
    }
}

fn fetch(name: &str, root: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if name == crate::data::fetch::FEATURE_NETWORK {
        use lab_plugin_api::paths;
        anyhow::ensure!(
            root.is_none(),
            "--root is where datasets go; the feature network goes to ${} when set, else {}",
            paths::FEATURES_ENV,
            paths::default_feature_network().display()
        );
        let dest = match std::env::var_os(paths::FEATURES_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => paths::default_feature_network(),
        };
        let path = crate::data::fetch::fetch_feature_network(&dest)?;
        println!("inception: ready in {} (SHA-256 {})", path.display(), paths::INCEPTION_SHA256);
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = crate::data::DataConfig { root, ..Default::default() };
    let root = cfg.resolved_root();
    let path = crate::data::fetch(name, &root)?;
    println!("{name}: ready in {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn make(name: &str, root: Option<PathBuf>, force: bool) -> anyhow::Result<ExitCode> {
    let cfg = crate::data::DataConfig { root, ..Default::default() };
    let root = cfg.resolved_root();
    let dir = root.join(name);
    if dir.exists() {
        if !force {
            println!("{name}: already in {} (--force rebuilds it)", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        std::fs::remove_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot remove it to rebuild: {e}", dir.display()))?;
    }
    let started = std::time::Instant::now();
    let dir = crate::data::standin::build(name, &root, cfg.download)?;
    println!("{name}: built in {} ({:.1} s)", dir.display(), started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::brief;

    #[test]
    fn brief_keeps_the_message_and_drops_the_backtrace() {
        let text = "step 4: network `d`: panicked: called `Result::unwrap()` on an `Err` value: Torch(\"shape '[7]' is invalid\\nException raised from infer_size_impl (most recent call first):\\nframe #0: c10::Error\")\nThe last good checkpoint (step 4) is intact.";
        assert_eq!(
            brief(text),
            "step 4: network `d`: panicked: libtorch: shape '[7]' is invalid\nThe last good checkpoint (step 4) is intact.\n(libtorch backtrace omitted; run with --verbose to see it)"
        );
        assert_eq!(brief("plain error"), "plain error");
    }

    #[test]
    fn brief_cuts_an_allocation_failure_at_its_first_frame_and_sizes_it() {
        let text = "architecture plugin `dcgan`: (model.config) panicked: called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 5120000000000 bytes. Error code 12 (Cannot allocate memory)\\nframe #0: c10::ThrowEnforceNotMet(char const*)\\nframe #1: c10::alloc_cpu\")";
        assert_eq!(
            brief(text),
            "architecture plugin `dcgan`: (model.config) panicked: libtorch: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 5120000000000 bytes. Error code 12 (Cannot allocate memory) (5.1 TB in all)\n(libtorch backtrace omitted; run with --verbose to see it)"
        );
    }
}
