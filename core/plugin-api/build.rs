//! Records which libtorch this crate (and so every plugin) is compiled against.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let version = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .ok()
        .map(PathBuf::from)
        .and_then(|lib| {
            // Python wheels ship torch/version.py next to torch/lib; standalone libtorch ships build-version.
            let py = lib.parent()?.join("version.py");
            if let Ok(text) = std::fs::read_to_string(&py) {
                println!("cargo:rerun-if-changed={}", py.display());
                return text.lines().find_map(|l| {
                    let rest = l.strip_prefix("__version__")?;
                    Some(rest.split(['\'', '"']).nth(1)?.to_string())
                });
            }
            let bv = lib.parent()?.join("build-version");
            std::fs::read_to_string(bv).ok().map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=LAB_LIBTORCH_VERSION={version}");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:libtorch_lib={lib}");
    }
}
