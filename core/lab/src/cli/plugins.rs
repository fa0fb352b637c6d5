//! `lab plugins`: what is loaded, from where, with which defaults.
use std::process::ExitCode;

use clap::Args;

use crate::plugins::Registry;

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn plugins(args: PluginsArgs) -> anyhow::Result<ExitCode> {
    let registry = Registry::discover(&[])?;
    let list = registry.list();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no plugins found; searched: {}", crate::plugins::search_path(&[]).iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let w_kind = list.iter().map(|p| p.kind.as_str().len()).max().unwrap_or(4).max(4);
    let w_name = list.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
    let w_ver = list.iter().map(|p| p.version.len()).max().unwrap_or(7).max(7);
    println!("{:w_kind$}  {:w_name$}  {:w_ver$}  {}", "KIND", "NAME", "VERSION", "LIBRARY");
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

/// `a = 1, b = "x"`: a plugin's default config on one line.
fn inline_defaults(toml_text: &str) -> String {
    let table: toml::Table = toml::from_str(toml_text).unwrap_or_default();
    table.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")
}
