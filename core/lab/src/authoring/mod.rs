//! Writing plugins outside this repository: `lab new-plugin` writes a crate that builds against
//! this checkout ([`scaffold`]), and `lab plugins build` compiles one and installs its library
//! on the plugin search path ([`install`]).
pub mod install;
pub mod scaffold;

use std::path::{Path, PathBuf};

/// The lab checkout this binary was built from: plugin crates depend on its `lab-plugin-api`
/// by path and build against its libtorch. `$LAB_ROOT` overrides it (a moved checkout).
pub fn lab_root() -> anyhow::Result<PathBuf> {
    let root = match std::env::var_os("LAB_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let root = root.canonicalize().unwrap_or(root);
    anyhow::ensure!(
        root.join("core/plugin-api/Cargo.toml").is_file(),
        "this lab was built from {}, which no longer holds lab's sources (core/plugin-api); set LAB_ROOT to the lab checkout",
        root.display()
    );
    Ok(root)
}

/// The folder `lab plugins build` installs into, searched after `$LAB_PLUGIN_PATH`:
/// `$LAB_PLUGIN_HOME`, else `$XDG_DATA_HOME/lab/plugins`, else `~/.local/share/lab/plugins`.
pub fn plugin_home() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LAB_PLUGIN_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("lab/plugins"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".local/share/lab/plugins"))
}

/// The environment cargo needs to build against `root`'s libtorch: torch-sys asks the venv's
/// Python where torch is (the same variables `./lab` sets, so compiled dependencies are shared).
pub fn cargo_env(root: &Path) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    vec![
        ("LIBTORCH_USE_PYTORCH".into(), "1".into()),
        ("PATH".into(), format!("{}:{path}", root.join(".venv/bin").display())),
    ]
}

/// `root`'s libtorch folder (`torch/lib` of its venv); an error with the fix when it has none.
pub fn torch_lib(root: &Path) -> anyhow::Result<PathBuf> {
    let python = root.join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .args(["-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run {}: {e}; run `./lab build` in {} first (it sets up libtorch)",
                python.display(),
                root.display()
            )
        })?;
    anyhow::ensure!(
        out.status.success(),
        "{} cannot import torch: {}; run `./lab build` in {} first",
        python.display(),
        String::from_utf8_lossy(&out.stderr).trim(),
        root.display()
    );
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
