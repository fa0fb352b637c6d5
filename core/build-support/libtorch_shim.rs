//! For build scripts: compiles a small C++ shim against the headers of the libtorch that
//! torch-sys found, for the libtorch functions tch does not bind (`core/lab`'s autocast switches,
//! `lab-nn`'s `leaky_relu` with a slope). Each build script includes this file with
//! `#[path = "…/core/build-support/libtorch_shim.rs"] mod libtorch_shim;` (a build script cannot
//! depend on a workspace crate it is part of building).
use std::path::Path;

/// Compiles `source` (relative to the crate) into the static library `name`, linked into the
/// crate. `lib` is libtorch's `lib/` folder; its headers lie beside it in `include/`, in both
/// the PyTorch wheel and the libtorch archive.
pub fn compile(lib: &Path, source: &str, name: &str) {
    println!("cargo:rerun-if-changed={source}");
    let include = lib.parent().expect("libtorch's lib/ has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file(source)
        .compile(name);
}
