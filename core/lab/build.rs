//! Links libtorch so the `lab` binary runs without `LD_LIBRARY_PATH`, and CUDA registers on GPU machines.
//!
//! tch's build script emits no rpath for downstream binaries, and the linker's `--as-needed` drops
//! `libtorch_cuda` because nothing references it by symbol, so CUDA would never register. We add:
//! - an `$ORIGIN`-relative rpath (the checkout can move) and the absolute one as a fallback;
//! - `libtorch_cuda` linked with `--no-as-needed` when the libtorch build has it.
//!
//! It also compiles the autocast shim (`src/train/amp/autocast.cpp`) against the same
//! libtorch's headers: tch binds no way to turn on CPU autocast or to choose bf16.
use std::path::{Component, Path, PathBuf};

#[path = "../build-support/libtorch_shim.rs"]
mod libtorch_shim;

fn relative(from: &Path, to: &Path) -> Option<PathBuf> {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c.as_os_str());
    }
    Some(rel)
}

/// The library file names of this workspace's plugin crates (`plugins/*` and `plugins/*/*`
/// with a `cdylib`): the only libraries `lab` loads from its own folder, which is also where
/// a plugin crate sharing lab's `target/` leaves its build.
fn own_plugin_libraries() -> String {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    println!("cargo:rerun-if-changed={}", plugins.display());
    let mut names = Vec::new();
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&plugins).into_iter().flatten().flatten().map(|e| e.path()).collect();
    let nested: Vec<PathBuf> =
        dirs.iter().flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten().map(|e| e.path())).collect();
    dirs.extend(nested);
    for dir in dirs {
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
        if !manifest.contains("cdylib") {
            continue;
        }
        let name = manifest.lines().find_map(|l| l.trim().strip_prefix("name = \"")?.strip_suffix('"'));
        if let Some(name) = name {
            names.push(format!("lib{}.so", name.replace('-', "_")));
        }
    }
    names.sort();
    names.join(",")
}

fn main() {
    println!("cargo:rustc-env=LAB_OWN_PLUGIN_LIBRARIES={}", own_plugin_libraries());
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else { return };
    let lib = PathBuf::from(lib);
    let lib = lib.canonicalize().unwrap_or(lib);
    // OUT_DIR = <target>/<profile>/build/lab-<hash>/out; binaries live in <target>/<profile>,
    // test binaries in <target>/<profile>/deps.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let out = out.canonicalize().unwrap_or(out);
    if let Some(profile_dir) = out.ancestors().nth(3) {
        if let Some(rel) = relative(profile_dir, &lib) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/{}", rel.display());
            println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../{}", rel.display());
        }
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    libtorch_shim::compile(&lib, "src/train/amp/autocast.cpp", "lab_autocast");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
