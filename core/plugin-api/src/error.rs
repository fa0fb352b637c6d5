//! Errors across the boundary: a `#[repr(C)]` value with the user-facing message, the config key
//! it concerns (relative to the plugin's own table, e.g. `g_channels`), and a detail (libtorch's
//! backtrace, a panic location) that the core shows only with `--verbose`. The core never parses
//! the message to find the key.
use abi_stable::std_types::{ROption, RString};

crate::abi! {
    /// An error as it crosses the library boundary.
    #[repr(C)]
    pub struct FfiError {
        pub message: RString,
        /// The config key the error is about, relative to the plugin's table.
        pub key: ROption<RString>,
        /// Everything users need only when debugging (backtraces); may be empty.
        pub detail: RString,
    }
}

/// A plugin error, as both sides see it in Rust.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Error {
    /// One or a few lines for users.
    pub message: String,
    /// The config key the error is about, relative to the plugin's own table.
    pub key: Option<String>,
    /// Debugging detail (libtorch's C++ backtrace, ...); may be empty.
    pub detail: String,
}

/// The result type of every plugin entry point.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where libtorch's error text turns from the message into its C++ backtrace; tch embeds it
/// both raw and `Debug`-escaped (inside `Torch("...")`).
const BACKTRACE_MARKERS: [&str; 2] = ["\\nException raised from", "\nException raised from"];

impl Error {
    /// An error from free text. A libtorch backtrace in it is moved to [`Error::detail`], so
    /// users see the one line that matters.
    pub fn new(message: impl Into<String>) -> Self {
        let text: String = message.into();
        let cut = BACKTRACE_MARKERS.iter().filter_map(|m| text.find(m)).min();
        match cut {
            Some(at) => {
                let head = text[..at].trim_end();
                // `Torch("shape is invalid` reads better as `libtorch: shape is invalid`.
                let head = match head.find("Torch(\"") {
                    Some(i) => format!("{}libtorch: {}", &head[..i], &head[i + 7..]),
                    None => head.to_string(),
                };
                Self { message: head, key: None, detail: text[at..].trim_start_matches("\\n").trim().to_string() }
            }
            None => Self { message: text, key: None, detail: String::new() },
        }
    }

    /// An error about the config key `key` (relative to the plugin's table).
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: Some(key.into()), ..Self::new(message) }
    }

    /// Sets the key, keeping an existing one (the innermost key is the most precise).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        if self.key.is_none() {
            self.key = Some(key.into());
        }
        self
    }

    /// Prefixes the message: `context: message`.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub(crate) fn into_ffi(self) -> FfiError {
        FfiError { message: self.message.into(), key: self.key.map(RString::from).into(), detail: self.detail.into() }
    }

    pub(crate) fn from_ffi(e: FfiError) -> Self {
        Self {
            message: e.message.into_string(),
            key: e.key.into_option().map(RString::into_string),
            detail: e.detail.into_string(),
        }
    }
}

impl std::fmt::Display for Error {
    /// `key `k`: message` (or the message alone); `{:#}` adds the detail on the lines after it.
    /// The core formats from the fields instead, with the key's full path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)?;
        if f.alternate() && !self.detail.is_empty() {
            write!(f, "\n{}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Compares what users would read, so tests can say `assert_eq!(err, "key `x`: ...")`.
impl PartialEq<&str> for Error {
    fn eq(&self, other: &&str) -> bool {
        // `Display` writes into a buffer anyway; comparing it is the point of this impl.
        #[allow(clippy::cmp_owned)]
        let equal = self.to_string() == *other;
        equal
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Self::new(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_backtrace_goes_to_the_detail() {
        let e = Error::new("network `d`: Torch(\"shape '[7]' is invalid\\nException raised from infer_size (most recent call first):\\nframe #0: c10::Error\")");
        assert_eq!(e.message, "network `d`: libtorch: shape '[7]' is invalid");
        assert!(e.detail.starts_with("Exception raised from infer_size"), "{}", e.detail);
        assert_eq!(format!("{e}"), e.message);
        assert_eq!(Error::config("k", "bad"), "key `k`: bad");
        assert!(format!("{e:#}").contains("frame #0"));
    }

    #[test]
    fn the_innermost_key_wins_and_survives_the_boundary() {
        let e = Error::config("g_channels", "must be positive").with_key("other").context("dcgan");
        let back = Error::from_ffi(e.clone().into_ffi());
        assert_eq!(back, e);
        assert_eq!(back.key.as_deref(), Some("g_channels"));
        assert_eq!(back.message, "dcgan: must be positive");
    }
}
