//! `lab plugins build [DIR]`: compiles a plugin crate with the libtorch environment of this
//! checkout and installs its library into the user plugin folder, checked by loading it.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::plugins::{is_library, LoadedLibrary};

/// What was installed.
#[derive(Debug)]
pub struct Installed {
    pub library: PathBuf,
    /// `(kind, name, description)` of every plugin in it.
    pub plugins: Vec<(String, String, String)>,
}

/// Builds the crate in `dir` (release unless `debug`) and copies its `cdylib` into `into`.
pub fn build_and_install(dir: &Path, debug: bool, into: &Path) -> anyhow::Result<Installed> {
    let manifest = dir.join("Cargo.toml");
    anyhow::ensure!(
        manifest.is_file(),
        "{} has no Cargo.toml; give the plugin crate's folder: `lab plugins build path/to/crate`",
        dir.display()
    );
    let manifest = manifest.canonicalize()?;
    let root = super::lab_root()?;
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.arg("build").arg("--lib").arg("--message-format=json-render-diagnostics");
    if !debug {
        cargo.arg("--release");
    }
    // Run inside the crate so its own `.cargo/config.toml` (target folder, environment) applies.
    cargo.current_dir(dir).envs(super::cargo_env(&root)).stdout(Stdio::piped());
    eprintln!("building {} ({})", manifest.display(), if debug { "debug" } else { "release" });
    let mut child =
        cargo.spawn().map_err(|e| anyhow::anyhow!("cannot run cargo: {e}; is Rust installed (https://rustup.rs)?"))?;
    let mut library = None;
    // Cargo reports each artifact as a JSON line; the crate's own cdylib is the one we want.
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line?) else { continue };
        let ours = message["manifest_path"].as_str().is_some_and(|m| Path::new(m) == manifest);
        let cdylib = message["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if message["reason"] == "compiler-artifact" && ours && cdylib {
            let files = message["filenames"].as_array().cloned().unwrap_or_default();
            library = files.iter().filter_map(|f| f.as_str()).map(PathBuf::from).find(|f| is_library(f));
        }
    }
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "cargo build failed for {} (its messages are above)", manifest.display());
    let library = library.ok_or_else(|| {
        anyhow::anyhow!(
            "{} built no dynamic library; a plugin crate needs `[lib] crate-type = [\"cdylib\", \"rlib\"]`",
            manifest.display()
        )
    })?;
    install(&library, into)
}

/// Copies `library` into `into` and loads the copy to check it is a plugin library built for
/// this lab. The copy is written beside its final name and renamed over it, so a `lab` process
/// that has the old one open keeps its version intact.
pub fn install(library: &Path, into: &Path) -> anyhow::Result<Installed> {
    std::fs::create_dir_all(into).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", into.display()))?;
    let name = library.file_name().ok_or_else(|| anyhow::anyhow!("{} is not a file", library.display()))?;
    let target = into.join(name);
    let partial = into.join(format!(".{}.partial", name.to_string_lossy()));
    std::fs::copy(library, &partial)
        .map_err(|e| anyhow::anyhow!("cannot copy {} to {}: {e}", library.display(), partial.display()))?;
    std::fs::rename(&partial, &target).map_err(|e| anyhow::anyhow!("cannot install {}: {e}", target.display()))?;
    let loaded = match LoadedLibrary::open(&target) {
        Ok(Some(lib)) => lib,
        Ok(None) => {
            let _ = std::fs::remove_file(&target);
            anyhow::bail!("{} exports no lab plugins (no `lab_plugin_api::export_plugins!`, or its `export` feature is off); not installed", library.display())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&target);
            return Err(anyhow::Error::new(e).context("not installed"));
        }
    };
    let plugins = loaded
        .plugins
        .plugins
        .iter()
        .map(|d| (d.factory.kind().as_str().to_string(), d.name.to_string(), d.description.to_string()))
        .collect();
    Ok(Installed { library: target, plugins })
}
