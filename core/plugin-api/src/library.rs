//! The root every plugin library exports, the plugin descriptors in it, and the panic guard.
//!
//! Three symbols are exported by [`export_plugins!`](crate::export_plugins):
//! - `lab_plugin_fingerprint() -> u64` and `lab_plugin_build_info() -> *const c_char` never change
//!   shape, so the loader can always read them, even from a plugin built for another interface;
//! - `lab_plugin_library() -> PluginLibrary` is called only once the fingerprint matches.
use std::any::Any;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RStr, RString, RVec};

use crate::error::{Error, FfiError};

use crate::architecture::ArchitectureObj;
use crate::augment::AugmentObj;
use crate::loss::LossObj;
use crate::metric::MetricObj;

crate::abi! {
    /// Errors cross as a typed value: message, config key, detail ([`crate::Error`]).
    pub type FfiResult<T> = RResult<T, FfiError>;

    /// What the data looks like, so an architecture can size itself.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DataSpec {
        pub channels: i64,
        pub height: i64,
        pub width: i64,
        pub num_classes: i64,
    }

    /// Where and for what a plugin object is created. `device` is -1 for the CPU, n for `cuda:n`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct BuildEnv {
        pub device: i32,
        pub data: DataSpec,
    }

    #[repr(u32)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum PluginKind {
        Architecture = 0,
        Loss = 1,
        Augmentation = 2,
        Metric = 3,
    }

    /// Creates a plugin object from its TOML config text.
    #[repr(C, u8)]
    pub enum Factory {
        Architecture(extern "C" fn(RStr<'_>, BuildEnv) -> FfiResult<ArchitectureObj>),
        Loss(extern "C" fn(RStr<'_>, BuildEnv) -> FfiResult<LossObj>),
        Augmentation(extern "C" fn(RStr<'_>, BuildEnv) -> FfiResult<AugmentObj>),
        Metric(extern "C" fn(RStr<'_>, BuildEnv) -> FfiResult<MetricObj>),
    }

    #[repr(C)]
    pub struct PluginDescriptor {
        pub name: RString,
        pub version: RString,
        pub description: RString,
        /// The plugin's full default config, as TOML.
        pub default_config: RString,
        pub factory: Factory,
    }

    #[repr(C)]
    pub struct PluginLibrary {
        pub plugins: RVec<PluginDescriptor>,
    }
}

impl PluginKind {
    pub const ALL: [PluginKind; 4] =
        [PluginKind::Architecture, PluginKind::Loss, PluginKind::Augmentation, PluginKind::Metric];

    /// The word users write: `architecture`, `loss`, `augmentation`, `metric`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Architecture => "architecture",
            PluginKind::Loss => "loss",
            PluginKind::Augmentation => "augmentation",
            PluginKind::Metric => "metric",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Factory {
    pub fn kind(&self) -> PluginKind {
        match self {
            Factory::Architecture(_) => PluginKind::Architecture,
            Factory::Loss(_) => PluginKind::Loss,
            Factory::Augmentation(_) => PluginKind::Augmentation,
            Factory::Metric(_) => PluginKind::Metric,
        }
    }
}

impl BuildEnv {
    pub fn device(&self) -> tch::Device {
        if self.device < 0 {
            tch::Device::Cpu
        } else {
            tch::Device::Cuda(self.device as usize)
        }
    }

    pub fn from_device(device: tch::Device, data: DataSpec) -> Self {
        let device = match device {
            tch::Device::Cuda(i) => i as i32,
            _ => -1,
        };
        Self { device, data }
    }
}

/// What a library says about itself, readable whatever interface it was built for.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BuildInfo {
    pub package: String,
    pub version: String,
    pub interface_version: String,
    pub fingerprint: String,
    pub libtorch: String,
    pub tch: String,
    /// The interface revision the library was built for (additive changes since 2.0).
    #[serde(default)]
    pub revision: u32,
    /// The fingerprint of each revision up to `revision`, as hex; revision 0's is `fingerprint`.
    #[serde(default)]
    pub fingerprints: Vec<String>,
}

impl BuildInfo {
    /// This build of the interface, as a plugin compiled with it would report it.
    pub fn current(package: &str, version: &str) -> Self {
        Self {
            package: package.to_string(),
            version: version.to_string(),
            interface_version: crate::INTERFACE_VERSION.to_string(),
            fingerprint: format!("{:016x}", crate::FINGERPRINTS[0]),
            libtorch: crate::LIBTORCH_VERSION.to_string(),
            tch: crate::TCH_VERSION.to_string(),
            revision: crate::REVISION,
            fingerprints: crate::FINGERPRINTS[..=crate::REVISION as usize]
                .iter()
                .map(|f| format!("{f:016x}"))
                .collect(),
        }
    }
}

/// The JSON text behind `lab_plugin_build_info`.
pub fn build_info_cstring(package: &str, version: &str) -> CString {
    let json = serde_json::to_string(&BuildInfo::current(package, version)).expect("plain data");
    CString::new(json).expect("no NUL in JSON")
}

/// Keeps a plugin's panics quiet: the message travels back as an error instead of being printed.
/// The plugin has its own copy of std, hence its own hook; this only affects the plugin.
pub fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

/// Runs `f`, turning both errors and panics into an FFI error. Every entry point uses it, so no
/// panic ever unwinds across the library boundary.
pub fn guard<T>(f: impl FnOnce() -> Result<T, Error>) -> FfiResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into_ffi()),
        Err(payload) => RResult::RErr(Error::new(format!("panicked: {}", panic_message(&*payload))).into_ffi()),
    }
}

/// The size a table claims: the end of the block of `revision` (`ends[r]` is where revision
/// `r`'s block ends). A plugin built for revision r hands over exactly that much.
pub const fn table_size(revision: u32, ends: &[usize]) -> usize {
    let r = revision as usize;
    if r < ends.len() {
        ends[r]
    } else {
        ends[ends.len() - 1]
    }
}

/// Like [`guard`] for entry points that cannot fail except by panicking; a panic yields `fallback`.
pub fn guard_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

/// Turns an FFI result into a Rust one.
pub fn into_result<T>(r: FfiResult<T>) -> Result<T, Error> {
    r.into_result().map_err(Error::from_ffi)
}

/// Registers one plugin library's descriptors and its three stable entry points.
///
/// ```ignore
/// lab_plugin_api::export_plugins! { architecture: Dcgan, loss: Hinge }
/// ```
///
/// The entry points are compiled only with the plugin crate's `export` feature (on by default:
/// `[features] default = ["export"]`, `export = []`). A crate that links another plugin crate as
/// a library depends on it with `default-features = false`, so the two libraries' entry points
/// do not collide.
#[macro_export]
macro_rules! export_plugins {
    ($($kind:ident : $ty:ty),* $(,)?) => {
        #[cfg(feature = "export")]
        #[no_mangle]
        pub extern "C" fn lab_plugin_fingerprint() -> u64 {
            $crate::FINGERPRINTS[0]
        }

        #[cfg(feature = "export")]
        #[no_mangle]
        pub extern "C" fn lab_plugin_build_info() -> *const ::std::os::raw::c_char {
            static INFO: ::std::sync::OnceLock<::std::ffi::CString> = ::std::sync::OnceLock::new();
            INFO.get_or_init(|| {
                $crate::library::build_info_cstring(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            })
            .as_ptr()
        }

        #[cfg(feature = "export")]
        #[no_mangle]
        pub extern "C" fn lab_plugin_library() -> $crate::library::PluginLibrary {
            $crate::library::install_quiet_panic_hook();
            let plugins: ::std::vec::Vec<$crate::library::PluginDescriptor> =
                vec![$($crate::$kind::descriptor::<$ty>(env!("CARGO_PKG_VERSION"))),*];
            $crate::library::PluginLibrary { plugins: plugins.into() }
        }
    };
}

impl serde::Serialize for PluginKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
