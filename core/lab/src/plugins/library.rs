//! Opening one plugin library: the stable entry points first, the fingerprint check, then the
//! descriptors.
use std::ffi::CStr;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};

use lab_plugin_api::library::{BuildInfo, PluginLibrary};
use sha2::{Digest, Sha256};

/// A loaded plugin library. Leaked on purpose: libraries are never unloaded.
pub struct LoadedLibrary {
    pub path: PathBuf,
    pub sha256: String,
    pub info: BuildInfo,
    pub plugins: PluginLibrary,
    _lib: libloading::Library,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot load plugin library: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("{}: plugin library `{}` {} was built for plugin interface {} (fingerprint {}, libtorch {}), but this lab {} uses interface {} (fingerprint {}, libtorch {}); loading it could crash, so it was skipped. Rebuild it against this lab: `lab plugins build` in the plugin's own crate, or `cargo build --release -p {}` for a plugin of this workspace.", .0.path.display(), .0.package, .0.version, .0.their_interface, .0.their_fingerprint, .0.their_torch, .0.lab_version, .0.our_interface, .0.our_fingerprint, .0.our_torch, .0.package)]
    Mismatch(Box<Mismatch>),
    #[error("{}: plugin library failed to describe its plugins: {message}", path.display())]
    Describe { path: PathBuf, message: String },
}

/// What a library that does not match this lab was built for, beside what this lab is (boxed in
/// [`LoadError`] so every `Result` carrying it stays small).
#[derive(Debug)]
pub struct Mismatch {
    pub path: PathBuf,
    pub package: String,
    pub version: String,
    pub their_interface: String,
    pub their_fingerprint: String,
    pub their_torch: String,
    pub lab_version: String,
    pub our_interface: String,
    pub our_fingerprint: String,
    pub our_torch: String,
}

/// The SHA-256 of a file, as lowercase hex (plugin libraries, checkpoints).
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

impl LoadError {
    /// The library the error is about.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Open { path, .. } | LoadError::Describe { path, .. } => path,
            LoadError::Mismatch(mismatch) => &mismatch.path,
        }
    }
}

impl LoadedLibrary {
    /// Opens `path`. `Ok(None)` means it is not a lab plugin library at all.
    pub fn open(path: &Path) -> Result<Option<&'static LoadedLibrary>, LoadError> {
        let open_err = |message: String| LoadError::Open { path: path.to_path_buf(), message };
        let sha256 = sha256_file(path).map_err(|e| open_err(e.to_string()))?;
        // SAFETY: loading a library runs its initialisers; plugin search paths are trusted.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| open_err(e.to_string()))?;
        // These two entry points never change shape, whatever interface the library was built for.
        let fingerprint = unsafe { lib.get::<extern "C" fn() -> u64>(b"lab_plugin_fingerprint\0") };
        let build_info = unsafe { lib.get::<extern "C" fn() -> *const c_char>(b"lab_plugin_build_info\0") };
        let (Ok(fingerprint), Ok(build_info)) = (fingerprint, build_info) else {
            return Ok(None);
        };
        let info_ptr = build_info();
        // SAFETY: the library returns a NUL-terminated static string.
        let info_text = unsafe { CStr::from_ptr(info_ptr) }.to_string_lossy().into_owned();
        let info: BuildInfo = serde_json::from_str(&info_text)
            .map_err(|e| LoadError::Describe { path: path.to_path_buf(), message: format!("bad build info: {e}") })?;
        // Revision 0 must match; so must every later revision both sides know. A library built
        // for an older revision hands over shorter tables; a newer one's extras are ignored.
        let shared = (info.revision.min(lab_plugin_api::REVISION) + 1) as usize;
        let ours: Vec<String> = lab_plugin_api::FINGERPRINTS[..shared].iter().map(|f| format!("{f:016x}")).collect();
        let revisions_agree = info.fingerprints.len() >= shared && info.fingerprints[..shared] == ours[..];
        if fingerprint() != lab_plugin_api::ABI_FINGERPRINT || !revisions_agree {
            let ours = BuildInfo::current("lab", env!("CARGO_PKG_VERSION"));
            return Err(LoadError::Mismatch(Box::new(Mismatch {
                path: path.to_path_buf(),
                package: info.package,
                version: info.version,
                their_interface: info.interface_version,
                their_fingerprint: info.fingerprint,
                their_torch: info.libtorch,
                lab_version: ours.version,
                our_interface: ours.interface_version,
                our_fingerprint: ours.fingerprint,
                our_torch: ours.libtorch,
            })));
        }
        // SAFETY: the fingerprint matches, so the descriptor layout is the one we compiled against.
        let library = unsafe { lib.get::<extern "C" fn() -> PluginLibrary>(b"lab_plugin_library\0") }
            .map_err(|e| LoadError::Describe { path: path.to_path_buf(), message: e.to_string() })?;
        let plugins = library();
        let loaded = Box::new(LoadedLibrary { path: path.to_path_buf(), sha256, info, plugins, _lib: lib });
        Ok(Some(Box::leak(loaded)))
    }
}
