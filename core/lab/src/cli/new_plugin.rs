//! `lab new-plugin`: a new plugin crate, ready to build, test and train.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::authoring::scaffold::{self, PluginKind};

#[derive(Debug, Args)]
pub struct NewPluginArgs {
    /// What the plugin provides.
    pub kind: PluginKind,
    /// Its name, as configs write it (`my-gan`); the crate is `lab-plugin-<name>`.
    pub name: String,
    /// Where to write the crate (default: ./<name>); must not exist or be empty.
    #[arg(long)]
    pub path: Option<PathBuf>,
}

pub fn new_plugin(args: NewPluginArgs) -> anyhow::Result<ExitCode> {
    let created = scaffold::create(args.kind, &args.name, args.path)?;
    let dir = created.dir.display();
    println!("created {} plugin `{}` in {dir}:", format!("{:?}", args.kind).to_lowercase(), args.name);
    for f in &created.files {
        println!("  {}", f.strip_prefix(&created.dir).unwrap_or(f).display());
    }
    println!("\nnext:\n  cd {dir}\n  lab plugins build          # build and install it\n  cargo test                 # its own tests\n  lab run experiments/{}.toml", args.name);
    println!("the tutorial: {}", crate::authoring::lab_root()?.join("docs/writing-plugins.md").display());
    Ok(ExitCode::SUCCESS)
}
