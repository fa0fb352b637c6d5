//! Lets this crate's test binaries find libtorch without `LD_LIBRARY_PATH`: an rpath to the
//! libtorch that lab-plugin-api was built against (the `lab` binary has the same one).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LAB_PLUGIN_API_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_LAB_PLUGIN_API_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
