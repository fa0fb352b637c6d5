//! libtorch failures in the core, turned into errors that say what to change.
//!
//! tch's infallible tensor methods panic when libtorch throws (an allocation that cannot be
//! satisfied, a shape that does not fit). Sizes come from the user's config, so such a panic is
//! an input error, not a bug: the core runs the places where config sizes meet libtorch inside
//! [`catch`], and the CLI runs every command inside it as a last resort. Inside a guard the panic
//! hook stays quiet, so the user sees one error and no Rust backtrace.
//!
//! Allocation failures are recognised from libtorch's own messages (the CPU allocator's "you
//! tried to allocate N bytes" and CUDA's "Tried to allocate X GiB ... of which Y is free"), so
//! the error can name the size and, on a GPU, the free memory.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// How many [`catch`] guards this thread is inside; the panic hook is quiet while positive.
    static GUARDS: Cell<u32> = const { Cell::new(0) };
}

/// Installs the panic hook: silent inside [`catch`] (the caller reports the failure), the
/// previous hook otherwise (a genuine bug keeps its location and backtrace).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDS.with(|g| g.get()) == 0 {
                previous(info);
            }
        }));
    });
}

/// A panic caught by [`catch`]: its message, libtorch's C++ frames dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchFailure {
    pub message: String,
}

/// Runs `f`; a panic (a libtorch exception surfacing through tch) becomes a [`TorchFailure`].
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, TorchFailure> {
    install_panic_hook();
    GUARDS.with(|g| g.set(g.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDS.with(|g| g.set(g.get() - 1));
    result.map_err(|payload| TorchFailure { message: one_line(&lab_plugin_api::library::panic_message(&*payload)) })
}

/// What an allocation failure says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// The size libtorch tried to allocate, as it printed it ("40.00 TB", "20.00 GiB").
    pub requested: String,
    /// On CUDA, libtorch's account of the device ("GPU 0 has a total capacity of 139.8 GiB of
    /// which 1.2 GiB is free"); `None` on the CPU.
    pub device_state: Option<String>,
}

impl TorchFailure {
    /// The allocation that failed, if this is an out-of-memory failure.
    pub fn allocation(&self) -> Option<Allocation> {
        let m = &self.message;
        if let Some(i) = m.find("you tried to allocate ") {
            let rest = &m[i + "you tried to allocate ".len()..];
            let bytes: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let requested = bytes.parse::<u64>().map(human_bytes).unwrap_or_else(|_| "an unknown size".to_string());
            return Some(Allocation { requested, device_state: None });
        }
        if let Some(i) = m.find("CUDA out of memory") {
            let rest = &m[i..];
            let requested = rest
                .find("Tried to allocate ")
                .map(|j| {
                    let size = &rest[j + "Tried to allocate ".len()..];
                    size.split(['.', ',']).take(2).collect::<Vec<_>>().join(".").trim().to_string()
                })
                .unwrap_or_else(|| "an unknown size".to_string());
            let device_state = rest.find("GPU ").map(|j| {
                let state = &rest[j..];
                let end = state.find(" is free").map(|e| e + " is free".len()).unwrap_or(state.len().min(120));
                state[..end].to_string()
            });
            return Some(Allocation { requested, device_state });
        }
        None
    }

    /// The failure explained for a size the user chose: `what` names it ("a batch of 512 images
    /// at 3×32×32"), `key` is the config key to lower.
    pub fn explain(&self, what: &str, key: &str) -> String {
        match self.allocation() {
            Some(a) => {
                let device = a.device_state.map(|s| format!(" ({s})")).unwrap_or_default();
                format!(
                    "{what} does not fit in memory: libtorch could not allocate {}{device}; lower `{key}`",
                    a.requested
                )
            }
            None => format!("{what}: libtorch failed: {}", self.message),
        }
    }
}

/// libtorch's message without its C++ backtrace: the text before "Exception raised from" or the
/// first `frame #`, on one line.
fn one_line(text: &str) -> String {
    let text = text.replace("\\n", "\n");
    let cut = ["Exception raised from", "\nframe #"].iter().filter_map(|m| text.find(m)).min().unwrap_or(text.len());
    let kept = text[..cut].replace("called `Result::unwrap()` on an `Err` value: Torch(\"", "");
    kept.split_whitespace().collect::<Vec<_>>().join(" ").trim_end_matches(['"', ')']).trim().to_string()
}

/// Bytes in the largest unit that keeps the number at least 1 (decimal units, as `df -H`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_allocation_failure_names_its_size_and_the_key() {
        // libtorch's real message for a failed CPU allocation, as tch's unwrap shows it.
        let failure = catch(|| tch::Tensor::zeros([1 << 45], (tch::Kind::Float, tch::Device::Cpu))).unwrap_err();
        assert!(failure.message.contains("DefaultCPUAllocator"), "{}", failure.message);
        assert!(!failure.message.contains("frame #"), "{}", failure.message);
        let allocation = failure.allocation().unwrap();
        assert_eq!(allocation.requested, "140.7 TB");
        assert_eq!(
            failure.explain("the sample grid's 35184372088832 latents", "log.samples"),
            "the sample grid's 35184372088832 latents does not fit in memory: libtorch could not allocate 140.7 TB; lower `log.samples`"
        );
    }

    #[test]
    fn a_cuda_out_of_memory_message_keeps_the_free_memory() {
        let failure = TorchFailure {
            message: "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 139.81 GiB of \
                      which 1.25 GiB is free. Including non-PyTorch memory, this process has 138.5 GiB in use."
                .to_string(),
        };
        let a = failure.allocation().unwrap();
        assert_eq!(a.requested, "20.00 GiB");
        assert_eq!(
            a.device_state.as_deref(),
            Some("GPU 0 has a total capacity of 139.81 GiB of which 1.25 GiB is free")
        );
        assert_eq!(
            failure.explain("a batch of 4096 images at 3×32×32", "train.batch_size"),
            "a batch of 4096 images at 3×32×32 does not fit in memory: libtorch could not allocate 20.00 GiB (GPU 0 has \
             a total capacity of 139.81 GiB of which 1.25 GiB is free); lower `train.batch_size`"
        );
    }

    #[test]
    fn other_failures_keep_libtorch_s_first_line() {
        let failure =
            catch(|| tch::Tensor::zeros([6], (tch::Kind::Float, tch::Device::Cpu)).view([4, -1])).unwrap_err();
        assert_eq!(failure.allocation(), None);
        assert_eq!(failure.message, "shape '[4, -1]' is invalid for input of size 6");
        assert_eq!(catch(|| 3).unwrap(), 3);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(78_400_000_000), "78.4 GB");
        assert_eq!(human_bytes(40_000_000_000_000), "40.0 TB");
    }
}
