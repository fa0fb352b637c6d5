//! `lab augment-preview`: a batch before (top rows) and after (bottom rows) an augmentation.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use lab_plugin_api::BuildEnv;
use tch::{Device, Tensor};

use crate::config::parse_assignments;
use crate::data::{self, DataConfig};
use crate::plugins::Registry;
use crate::track;

#[derive(Debug, Args)]
pub struct AugmentPreviewArgs {
    /// The augmentation plugin, e.g. `diffaugment`.
    #[arg(long)]
    pub augment: String,
    /// Plugin config assignments, e.g. `--config policy=translation,cutout` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Dataset to take the batch from.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: String,
    /// Images per row.
    #[arg(long, default_value_t = 8)]
    pub n: i64,
    /// Rows of originals (each followed by its augmented row).
    #[arg(long, default_value_t = 2)]
    pub rows: i64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn augment_preview(args: AugmentPreviewArgs) -> anyhow::Result<ExitCode> {
    let data_cfg = DataConfig { dataset: args.dataset.clone(), fraction: 1.0, ..Default::default() };
    data_cfg.validate()?;
    let ds = data::load(&data_cfg)?.centred();
    let registry = Registry::discover(&[])?;
    let config = parse_assignments(&args.config)?;
    let env = BuildEnv::from_device(Device::Cpu, data::spec(&ds));
    let mut augment = registry.augment(&args.augment, &config, env)?;
    let count = args.n * args.rows;
    let x = data::to_unit_range(&ds.images.narrow(0, 0, count.min(ds.images.size()[0])));
    let y = augment.apply(&x, args.seed).map_err(|m| anyhow::anyhow!("augmentation `{}`: {m}", args.augment))?;
    // Interleave rows: originals, then the same images augmented.
    let rows: Vec<Tensor> =
        (0..args.rows).flat_map(|r| [x.narrow(0, r * args.n, args.n), y.narrow(0, r * args.n, args.n)]).collect();
    let grid = track::grid(&Tensor::cat(&rows, 0), args.n, 2)?;
    grid.save_png(&args.out)?;
    println!(
        "{}: {} rows of {} ({} before, {} after)",
        args.out.display(),
        2 * args.rows,
        args.n,
        args.rows,
        args.rows
    );
    Ok(ExitCode::SUCCESS)
}
