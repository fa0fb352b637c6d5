//! Compiles `src/ops.cpp` (ATen operations tch binds without an argument lab needs) against the
//! headers of the libtorch torch-sys found, so both sides agree on `at::Tensor`.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ops.cpp");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // torch-sys (`links = "tch"`) reports where libtorch's `lib/` is; `include/` lies beside it
    // in both the PyTorch wheel and the libtorch archive.
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports libtorch's lib/"));
    let include = lib.parent().expect("libtorch's lib/ has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("src/ops.cpp")
        .compile("lab_nn_ops");
}
