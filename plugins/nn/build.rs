//! Compiles `src/ops.cpp` (ATen operations tch binds without an argument lab needs) against the
//! headers of the libtorch torch-sys found, so both sides agree on `at::Tensor`.
use std::path::PathBuf;

#[path = "../../core/build-support/libtorch_shim.rs"]
mod libtorch_shim;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // torch-sys (`links = "tch"`) reports where libtorch's `lib/` is.
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports libtorch's lib/"));
    libtorch_shim::compile(&lib, "src/ops.cpp", "lab_nn_ops");
}
