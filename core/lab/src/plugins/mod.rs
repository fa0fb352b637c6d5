//! The plugin loader: finds plugin libraries, checks each one's interface fingerprint before
//! using it, and creates plugin objects by kind and name.
//!
//! Search order (first match of a name wins): the folder next to the `lab` binary (lab's own
//! plugins), `$LAB_PLUGIN_PATH` (colon-separated folders or library files), the user plugin
//! folder `lab plugins build` installs into ([`crate::authoring::plugin_home`]), then the
//! config's `plugins.paths`.
//! Libraries are never unloaded: objects they created may live until the process exits.
mod library;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lab_plugin_api::host::{into_result, Architecture, Augment, Factory, Loss, Metric};
use lab_plugin_api::BuildEnv;
use lab_plugin_api::PluginKind;
use serde::Serialize;

pub(crate) use library::sha256_file;
pub use library::{LoadError, LoadedLibrary};

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("no {kind} plugin named `{name}` (config key `{key}`); {hint}available {kind} plugins: {available}. Run `lab plugins` to list everything that is loaded.")]
    Missing { kind: PluginKind, name: String, key: String, hint: String, available: String },
    /// A plugin's error while being created or configured. `key` is the full config path: the
    /// plugin's own key under its table (`model.config.z_dim`), or the table itself.
    #[error("{kind} plugin `{name}`: {}{message}", if *keyed { format!("key `{key}`: ") } else { format!("({key}) ") })]
    Config { kind: PluginKind, name: String, key: String, keyed: bool, message: String },
}

impl PluginError {
    /// A plugin's typed error: its key, relative to the plugin's table, is placed under `table`.
    pub fn from_plugin(kind: PluginKind, name: &str, table: &str, error: lab_plugin_api::Error) -> Self {
        if !error.detail.is_empty() {
            tracing::debug!("{kind} plugin `{name}`: {}", error.detail);
        }
        let (key, keyed) = match &error.key {
            Some(k) => (format!("{table}.{k}"), true),
            None => (table.to_string(), false),
        };
        PluginError::Config { kind, name: name.to_string(), key, keyed, message: error.message }
    }
}

/// One plugin, as found in a library.
#[derive(Clone, Debug, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub kind: PluginKind,
    pub version: String,
    pub description: String,
    pub library: PathBuf,
    pub sha256: String,
    pub default_config: String,
}

struct Entry {
    info: PluginInfo,
    factory: FactoryFn,
}

#[derive(Clone, Copy)]
enum FactoryFn {
    Architecture(
        extern "C" fn(
            abi_stable::std_types::RStr<'_>,
            BuildEnv,
        ) -> lab_plugin_api::library::FfiResult<lab_plugin_api::architecture::ArchitectureObj>,
    ),
    Loss(
        extern "C" fn(
            abi_stable::std_types::RStr<'_>,
            BuildEnv,
        ) -> lab_plugin_api::library::FfiResult<lab_plugin_api::loss::LossObj>,
    ),
    Augmentation(
        extern "C" fn(
            abi_stable::std_types::RStr<'_>,
            BuildEnv,
        ) -> lab_plugin_api::library::FfiResult<lab_plugin_api::augment::AugmentObj>,
    ),
    Metric(
        extern "C" fn(
            abi_stable::std_types::RStr<'_>,
            BuildEnv,
        ) -> lab_plugin_api::library::FfiResult<lab_plugin_api::metric::MetricObj>,
    ),
}

impl From<&Factory> for FactoryFn {
    fn from(f: &Factory) -> Self {
        match f {
            Factory::Architecture(f) => FactoryFn::Architecture(*f),
            Factory::Loss(f) => FactoryFn::Loss(*f),
            Factory::Augmentation(f) => FactoryFn::Augmentation(*f),
            Factory::Metric(f) => FactoryFn::Metric(*f),
        }
    }
}

/// Every plugin found on the search path.
pub struct Registry {
    entries: Vec<Entry>,
    /// Libraries skipped because they are not plugin libraries (no entry points).
    pub skipped: Vec<PathBuf>,
    /// Libraries that could not be loaded (not a library at all, built for another interface,
    /// failing to describe themselves): skipped with a warning, named again if a run then
    /// misses a plugin.
    pub broken: Vec<LoadError>,
}

/// The folders and files searched, in order.
pub fn search_path(config_paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        paths.push(dir);
    }
    if let Some(var) = std::env::var_os("LAB_PLUGIN_PATH") {
        paths.extend(std::env::split_paths(&var).filter(|p| !p.as_os_str().is_empty()));
    }
    paths.extend(crate::authoring::plugin_home());
    paths.extend(config_paths.iter().cloned());
    paths
}

/// Whether `p` is named like a dynamic library.
/// Loading a plugin runs its code with the user's rights, so a library someone else could have
/// written deserves a warning: a folder anyone may write to (without the sticky bit, which at
/// least keeps others from replacing files they do not own), or a file owned by another user
/// (root's files are trusted, as the system's own libraries are).
fn warn_if_unsafe_to_load(path: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::metadata(path) else { return };
    let mode = meta.permissions().mode();
    if meta.is_dir() && mode & 0o002 != 0 && mode & 0o1000 == 0 {
        eprintln!(
            "warning: plugin folder {} is writable by every user (mode {:o}); anyone could place code there that lab \
             would run. Restrict it: chmod o-w {}",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.is_file() && meta.uid() != me && meta.uid() != 0 {
        eprintln!(
            "warning: plugin library {} belongs to another user (uid {}); loading it runs their code as you",
            path.display(),
            meta.uid()
        );
    }
    if meta.is_file() && mode & 0o002 != 0 {
        eprintln!(
            "warning: plugin library {} is writable by every user (mode {:o}); restrict it: chmod o-w {}",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
}

pub(crate) fn is_library(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("so" | "dylib" | "dll"))
}

impl Registry {
    /// Loads every plugin library on the search path. One that cannot be loaded (junk, built for
    /// another interface) or is not a lab plugin at all is skipped with a warning line saying why
    /// (and how to fix it), so one bad file never stops runs that do not need it.
    pub fn discover(config_paths: &[PathBuf]) -> Result<Self, PluginError> {
        let mut files = Vec::new();
        let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
        for path in search_path(config_paths) {
            if path.is_file() {
                warn_if_unsafe_to_load(&path);
                files.push(path);
            } else if let Ok(read) = std::fs::read_dir(&path) {
                warn_if_unsafe_to_load(&path);
                let mut found: Vec<PathBuf> =
                    read.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_library(p)).collect();
                // Next to the binary (a cargo target folder, which plugin crates built against this
                // checkout share) only this workspace's own plugin crates count.
                if Some(&path) == exe_dir.as_ref() {
                    let own: Vec<&str> = env!("LAB_OWN_PLUGIN_LIBRARIES").split(',').collect();
                    found.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| own.contains(&n)));
                }
                found.sort();
                for file in &found {
                    warn_if_unsafe_to_load(file);
                }
                files.extend(found);
            }
        }
        let mut seen = BTreeSet::new();
        let mut registry = Registry { entries: Vec::new(), skipped: Vec::new(), broken: Vec::new() };
        for file in files {
            let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
            if !seen.insert(canonical) {
                continue;
            }
            match LoadedLibrary::open(&file) {
                Ok(Some(lib)) => registry.add(lib),
                Ok(None) => {
                    eprintln!(
                        "warning: {}: not a lab plugin library (no `lab_plugin_fingerprint` entry point); skipped",
                        file.display()
                    );
                    registry.skipped.push(file)
                }
                Err(e) => {
                    eprintln!("warning: {e}");
                    registry.broken.push(e);
                }
            }
        }
        Ok(registry)
    }

    fn add(&mut self, lib: &'static LoadedLibrary) {
        for d in lib.plugins.plugins.iter() {
            let kind = d.factory.kind();
            let name = d.name.as_str();
            if self.entries.iter().any(|e| e.info.kind == kind && e.info.name == name) {
                tracing::warn!("{kind} plugin `{name}` in {} is shadowed by one found earlier", lib.path.display());
                continue;
            }
            self.entries.push(Entry {
                info: PluginInfo {
                    name: name.to_string(),
                    kind,
                    version: d.version.to_string(),
                    description: d.description.to_string(),
                    library: lib.path.clone(),
                    sha256: lib.sha256.clone(),
                    default_config: d.default_config.to_string(),
                },
                factory: FactoryFn::from(&d.factory),
            });
        }
    }

    /// Every plugin, sorted by kind then name.
    pub fn list(&self) -> Vec<&PluginInfo> {
        let mut v: Vec<&PluginInfo> = self.entries.iter().map(|e| &e.info).collect();
        v.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        v
    }

    /// The plugin of `kind` called `name`; `key` is the config key that named it, for errors.
    pub fn find(&self, kind: PluginKind, name: &str, key: &str) -> Result<&PluginInfo, PluginError> {
        self.entry(kind, name, key).map(|e| &e.info)
    }

    fn entry(&self, kind: PluginKind, name: &str, key: &str) -> Result<&Entry, PluginError> {
        if let Some(e) = self.entries.iter().find(|e| e.info.kind == kind && e.info.name == name) {
            return Ok(e);
        }
        let mut names: Vec<&str> =
            self.entries.iter().filter(|e| e.info.kind == kind).map(|e| e.info.name.as_str()).collect();
        names.sort_unstable();
        let hint = lab_plugin_api::config::did_you_mean(name, names.iter().copied())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        let mut available = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        if !self.broken.is_empty() {
            let files: Vec<String> = self.broken.iter().map(|e| e.path().display().to_string()).collect();
            available.push_str(&format!(" (skipped, see the warnings above: {})", files.join(", ")));
        }
        Err(PluginError::Missing { kind, name: name.to_string(), key: key.to_string(), hint, available })
    }

    fn config_error(info: &PluginInfo, table: &str, error: lab_plugin_api::Error) -> PluginError {
        PluginError::from_plugin(info.kind, &info.name, table, error)
    }

    /// Creates an object of any kind, handing the plugin its config as TOML text.
    #[expect(clippy::too_many_arguments, reason = "one creator for every kind: the kind's keys and its factory call")]
    fn create<T>(
        &self,
        kind: PluginKind,
        name: &str,
        name_key: &str,
        config_key: &str,
        config: &toml::Table,
        env: BuildEnv,
        make: impl FnOnce(FactoryFn, &str, BuildEnv) -> Option<Result<T, lab_plugin_api::Error>>,
    ) -> Result<T, PluginError> {
        let entry = self.entry(kind, name, name_key)?;
        let text = toml::to_string(config).expect("a TOML table serialises");
        make(entry.factory, &text, env)
            .expect("registry entries have factories of their own kind")
            .map_err(|m| Self::config_error(&entry.info, config_key, m))
    }

    pub fn architecture(&self, name: &str, config: &toml::Table, env: BuildEnv) -> Result<Architecture, PluginError> {
        self.create(PluginKind::Architecture, name, "model.architecture", "model.config", config, env, |f, t, env| {
            match f {
                // SAFETY: the library is loaded for the life of the process.
                FactoryFn::Architecture(f) => {
                    Some(into_result(f(t.into(), env)).map(|o| unsafe { Architecture::from_raw(o) }))
                }
                _ => None,
            }
        })
    }

    pub fn loss(&self, name: &str, config: &toml::Table, env: BuildEnv) -> Result<Loss, PluginError> {
        self.create(PluginKind::Loss, name, "loss.name", "loss.config", config, env, |f, t, env| match f {
            // SAFETY: the library is loaded for the life of the process.
            FactoryFn::Loss(f) => Some(into_result(f(t.into(), env)).map(|o| unsafe { Loss::from_raw(o) })),
            _ => None,
        })
    }

    pub fn augment(&self, name: &str, config: &toml::Table, env: BuildEnv) -> Result<Augment, PluginError> {
        self.create(
            PluginKind::Augmentation,
            name,
            "augment.name",
            "augment.config",
            config,
            env,
            |f, t, env| match f {
                // SAFETY: the library is loaded for the life of the process.
                FactoryFn::Augmentation(f) => {
                    Some(into_result(f(t.into(), env)).map(|o| unsafe { Augment::from_raw(o) }))
                }
                _ => None,
            },
        )
    }

    pub fn metric(&self, name: &str, config: &toml::Table, env: BuildEnv) -> Result<Metric, PluginError> {
        self.create(PluginKind::Metric, name, "eval.metrics", "eval.config", config, env, |f, t, env| match f {
            // SAFETY: the library is loaded for the life of the process.
            FactoryFn::Metric(f) => Some(into_result(f(t.into(), env)).map(|o| unsafe { Metric::from_raw(o) })),
            _ => None,
        })
    }

    /// The plugin's defaults overlaid with the user's config: what actually runs.
    pub fn resolved_config(&self, kind: PluginKind, name: &str, user: &toml::Table) -> toml::Table {
        let mut base: toml::Table = self
            .entries
            .iter()
            .find(|e| e.info.kind == kind && e.info.name == name)
            .and_then(|e| toml::from_str(&e.info.default_config).ok())
            .unwrap_or_default();
        for (k, v) in user {
            base.insert(k.clone(), v.clone());
        }
        base
    }
}
