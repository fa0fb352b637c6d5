//! `lab plugins`: what is loaded, from where, with which defaults; `lab plugins build`: compile
//! and install a plugin crate.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::{Experiment, Sources};
use crate::plugins::Registry;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PluginsArgs {
    #[command(subcommand)]
    pub command: Option<PluginsCommand>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Also search this experiment's `plugins.paths`, as `lab run` would.
    #[arg(long, value_name = "FILE")]
    pub experiment: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Build a plugin crate against this lab and install its library into the user plugin
    /// folder ($LAB_PLUGIN_HOME, else ~/.local/share/lab/plugins).
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The plugin crate's folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// A debug build: compiles faster, trains slower. `LAB_PLUGINS_BUILD_DEBUG=1` makes it the
    /// default (CI machines that only check that plugins build and run).
    #[arg(long, env = "LAB_PLUGINS_BUILD_DEBUG", value_parser = clap::builder::BoolishValueParser::new())]
    pub debug: bool,
    /// Install into this folder instead of the user plugin folder.
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
}

pub fn plugins(args: PluginsArgs) -> anyhow::Result<ExitCode> {
    if let Some(PluginsCommand::Build(build)) = args.command {
        return build_plugin(build);
    }
    let paths = match &args.experiment {
        Some(file) => {
            Experiment::load(&Sources { file: Some(file.clone()), env: true, set: Vec::new() })?.plugins.paths
        }
        None => Vec::new(),
    };
    let registry = Registry::discover(&paths)?;
    let list = registry.list();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!(
            "no plugins found; searched: {}",
            crate::plugins::search_path(&paths).iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let w_kind = list.iter().map(|p| p.kind.as_str().len()).max().unwrap_or(4).max(4);
    let w_name = list.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
    let w_ver = list.iter().map(|p| p.version.len()).max().unwrap_or(7).max(7);
    println!("{:w_kind$}  {:w_name$}  {:w_ver$}  LIBRARY", "KIND", "NAME", "VERSION");
    for p in &list {
        let lib = p.library.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        println!("{:w_kind$}  {:w_name$}  {:w_ver$}  {}", p.kind.as_str(), p.name, p.version, lib);
        println!("{:w_kind$}  {}", "", p.description);
        let defaults = inline_defaults(&p.default_config);
        if !defaults.is_empty() {
            println!("{:w_kind$}  defaults: {defaults}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build_plugin(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let into = match args.into.or_else(crate::authoring::plugin_home) {
        Some(dir) => dir,
        None => anyhow::bail!("no user plugin folder: set LAB_PLUGIN_HOME (or HOME), or pass --into DIR"),
    };
    let installed = crate::authoring::install::build_and_install(&args.dir, args.debug, &into)?;
    println!("installed {}", installed.library.display());
    for (kind, name, description) in &installed.plugins {
        println!("  {kind} `{name}`: {description}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `a = 1, b = "x"`: a plugin's default config on one line.
fn inline_defaults(toml_text: &str) -> String {
    let table: toml::Table = toml::from_str(toml_text).unwrap_or_default();
    table.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")
}
