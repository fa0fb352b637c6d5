//! What decides a CPU run's floating-point results, recorded in every manifest, and the
//! `deterministic = "portable"` mode that pins it.
//!
//! libtorch picks its CPU kernels at run time: ATen's vectorised kernels by the CPU's
//! instruction set (default, AVX2, AVX-512), oneDNN's convolutions and MKL's matrix products by
//! theirs, and every reduction splits its work by the thread count. Each choice changes the order
//! of additions, so the same build, config and seed give bit-identical results only on machines
//! that make the same choices. Portable mode makes them the same everywhere: one thread (or the
//! configured count) and every library capped at the oldest instruction set an x86-64 server has,
//! through the libraries' own switches (`ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA`, `MKL_CBWR`).
//! The libraries read those once, when first used, so `lab run` sets them and re-executes itself
//! before libtorch does any work.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The switches portable mode sets, and their values: the floor every x86-64 CPU reaches.
pub const PORTABLE_CAPS: &[(&str, &str)] =
    &[("ATEN_CPU_CAPABILITY", "default"), ("ONEDNN_MAX_CPU_ISA", "SSE41"), ("MKL_CBWR", "COMPATIBLE")];

/// Set in the re-executed process, so it does not re-execute again.
const PORTABLE_MARK: &str = "LAB_PORTABLE_NUMERICS";

/// The switches that change libtorch's CPU kernels, recorded as found in the environment.
const SWITCHES: &[&str] = &[
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
];

/// What decides a CPU run's numerics on this machine, as `manifest.json` records it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuNumerics {
    /// libtorch's intra-op threads.
    pub threads: i32,
    /// `/proc/cpuinfo`'s model name.
    pub cpu_model: String,
    /// The widest vector instruction set the CPU reports (`avx512f`, `avx2`, `avx`, `sse4_2`, ...).
    pub cpu_isa: String,
    /// Whether libtorch was built with MKL (BLAS), oneDNN (convolutions) and OpenMP (threads).
    pub mkl: bool,
    pub onednn: bool,
    pub openmp: bool,
    /// The kernel switches set in the environment (see [`PORTABLE_CAPS`]).
    pub switches: BTreeMap<String, String>,
    /// Whether portable mode pinned them.
    pub portable: bool,
}

impl CpuNumerics {
    /// Reads this process's state (call after the thread count is set).
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let flags = field("flags");
        let flags: Vec<&str> = flags.split_whitespace().collect();
        let cpu_isa = ["avx512f", "avx2", "avx", "sse4_2", "sse4_1", "sse2"]
            .into_iter()
            .find(|isa| flags.contains(isa))
            .unwrap_or(std::env::consts::ARCH)
            .to_string();
        Self {
            threads: tch::get_num_threads(),
            cpu_model: field("model name"),
            cpu_isa,
            mkl: tch::utils::has_mkl(),
            onednn: tch::utils::has_mkldnn(),
            openmp: tch::utils::has_openmp(),
            switches: SWITCHES.iter().filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_string(), v))).collect(),
            portable: std::env::var_os(PORTABLE_MARK).is_some(),
        }
    }

    /// How `now` differs from this record in what decides the numerics, one phrase each.
    pub fn differences(&self, now: &CpuNumerics) -> Vec<String> {
        let mut out = Vec::new();
        if self.portable && now.portable {
            // Pinned on both sides: only the thread count and the libraries' builds still matter.
            if self.threads != now.threads {
                out.push(format!("{} threads instead of {}", now.threads, self.threads));
            }
        } else {
            if self.cpu_model != now.cpu_model {
                out.push(format!("CPU `{}` instead of `{}`", now.cpu_model, self.cpu_model));
            }
            if self.cpu_isa != now.cpu_isa {
                out.push(format!("vector ISA {} instead of {}", now.cpu_isa, self.cpu_isa));
            }
            if self.threads != now.threads {
                out.push(format!("{} threads instead of {}", now.threads, self.threads));
            }
            if self.switches != now.switches {
                out.push(format!("kernel switches {:?} instead of {:?}", now.switches, self.switches));
            }
            if self.portable != now.portable {
                out.push(format!("portable mode {} instead of {}", on_off(now.portable), on_off(self.portable)));
            }
        }
        if (self.mkl, self.onednn, self.openmp) != (now.mkl, now.onednn, now.openmp) {
            out.push("a libtorch built with other libraries (MKL, oneDNN, OpenMP)".to_string());
        }
        out
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Portable mode for this process: unless it already runs with [`PORTABLE_CAPS`], re-executes
/// the same command with them set (and never returns). Call before any libtorch work.
pub fn enter_portable_mode() -> anyhow::Result<()> {
    let pinned = PORTABLE_CAPS.iter().all(|(k, v)| std::env::var(k).is_ok_and(|found| found == *v));
    if pinned && std::env::var_os(PORTABLE_MARK).is_some() {
        return Ok(());
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command.args(std::env::args_os().skip(1)).env(PORTABLE_MARK, "1");
    for (k, v) in PORTABLE_CAPS {
        command.env(k, v);
    }
    // `exec` only returns on failure.
    let error = command.exec();
    anyhow::bail!("deterministic = \"portable\": cannot restart lab with the CPU switches set: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_is_described() {
        let now = CpuNumerics::current();
        assert!(now.threads >= 1);
        assert!(!now.cpu_isa.is_empty());
        assert!(now.differences(&now).is_empty());
    }

    #[test]
    fn a_resume_elsewhere_names_what_changed() {
        let then = CpuNumerics {
            threads: 2,
            cpu_model: "AMD EPYC".into(),
            cpu_isa: "avx2".into(),
            mkl: true,
            onednn: true,
            openmp: true,
            ..Default::default()
        };
        let now = CpuNumerics { threads: 8, cpu_model: "Intel Xeon".into(), cpu_isa: "avx512f".into(), ..then.clone() };
        assert_eq!(
            then.differences(&now),
            ["CPU `Intel Xeon` instead of `AMD EPYC`", "vector ISA avx512f instead of avx2", "8 threads instead of 2"]
        );
        // Both pinned: the CPU no longer matters, the thread count still does.
        let (then, now) = (CpuNumerics { portable: true, ..then }, CpuNumerics { portable: true, ..now });
        assert_eq!(then.differences(&now), ["8 threads instead of 2"]);
    }
}
