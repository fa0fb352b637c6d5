//! The local queue: up to N `lab run` processes at once, each on its own GPU when there are
//! GPUs (`CUDA_VISIBLE_DEVICES`, least-busy first), each writing to its own log file. Ctrl-C
//! stops starting new jobs and asks running ones to checkpoint and stop (one SIGINT each; they
//! run in their own process groups so the terminal's signal reaches only the sweep).
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by the sweep's Ctrl-C handler.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// One process to run.
#[derive(Clone, Debug)]
pub struct Job {
    /// For messages: `[3/12] <label>`.
    pub position: usize,
    pub label: String,
    pub args: Vec<OsString>,
    pub log: PathBuf,
    /// Whether the job may be pinned to a GPU (its config asks for `auto` or `cuda`).
    pub wants_gpu: bool,
}

/// How a queue run went.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub succeeded: Vec<String>,
    pub failed: Vec<(String, PathBuf)>,
    /// Jobs never started because of Ctrl-C.
    pub not_started: usize,
    pub interrupted: bool,
}

/// The GPUs jobs are spread over: `CUDA_VISIBLE_DEVICES` when set, else every CUDA device.
pub fn gpus() -> Vec<String> {
    if let Ok(list) = std::env::var("CUDA_VISIBLE_DEVICES") {
        return list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    }
    (0..tch::Cuda::device_count().max(0)).map(|i| i.to_string()).collect()
}

struct Running {
    job: Job,
    child: Child,
    gpu: Option<usize>,
    started: Instant,
}

/// Runs the jobs with `lab` (`bin`), `parallel` at a time, and waits for all of them.
pub fn run(bin: &Path, jobs: Vec<Job>, parallel: usize, gpus: &[String], total: usize) -> Outcome {
    let parallel = parallel.max(1);
    let mut pending: std::collections::VecDeque<Job> = jobs.into();
    let mut running: Vec<Running> = Vec::new();
    let mut busy = vec![0usize; gpus.len()];
    let mut outcome = Outcome::default();
    let mut signalled = false;
    while !pending.is_empty() || !running.is_empty() {
        let stop = STOP.load(Ordering::SeqCst);
        if stop && !signalled {
            signalled = true;
            outcome.interrupted = true;
            for r in &running {
                // SAFETY: kill(2) on a child we spawned and have not reaped.
                unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGINT) };
            }
        }
        while !stop && running.len() < parallel {
            let Some(job) = pending.pop_front() else { break };
            let gpu = (job.wants_gpu && !gpus.is_empty())
                .then(|| (0..gpus.len()).min_by_key(|&g| (busy[g], g)).expect("at least one GPU"));
            match start(bin, &job, gpu.map(|g| gpus[g].as_str())) {
                Ok(child) => {
                    if let Some(g) = gpu {
                        busy[g] += 1;
                    }
                    let on = gpu.map(|g| format!("GPU {}; ", gpus[g])).unwrap_or_default();
                    println!("[{}/{total}] {}  ({on}log {})", job.position, job.label, job.log.display());
                    running.push(Running { job, child, gpu, started: Instant::now() });
                }
                Err(e) => {
                    println!("[{}/{total}] FAILED to start {}: {e}", job.position, job.label);
                    outcome.failed.push((job.label.clone(), job.log.clone()));
                }
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].child.try_wait() {
                Ok(None) => i += 1,
                done => {
                    let r = running.swap_remove(i);
                    if let Some(g) = r.gpu {
                        busy[g] -= 1;
                    }
                    let secs = r.started.elapsed().as_secs_f64();
                    match done {
                        Ok(Some(status)) if status.success() => {
                            println!("[{}/{total}] done {} in {secs:.1} s", r.job.position, r.job.label);
                            outcome.succeeded.push(r.job.label);
                        }
                        other => {
                            let why = match other {
                                Ok(Some(s)) => {
                                    s.code().map(|c| format!("exit {c}")).unwrap_or_else(|| "killed by a signal".into())
                                }
                                Err(e) => e.to_string(),
                                Ok(None) => unreachable!("handled above"),
                            };
                            println!(
                                "[{}/{total}] FAILED {} ({why}); see {}",
                                r.job.position,
                                r.job.label,
                                r.job.log.display()
                            );
                            for line in tail(&r.job.log, 4) {
                                println!("    | {line}");
                            }
                            outcome.failed.push((r.job.label, r.job.log));
                        }
                    }
                }
            }
        }
        if stop {
            outcome.not_started += pending.len();
            pending.clear();
        }
        if !running.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    outcome
}

/// The last `n` non-empty lines of a log, to show why a job failed.
fn tail(log: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

fn start(bin: &Path, job: &Job, gpu: Option<&str>) -> std::io::Result<Child> {
    if let Some(dir) = job.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::File::create(&job.log)?;
    let mut cmd = Command::new(bin);
    cmd.args(&job.args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    if let Some(g) = gpu {
        cmd.env("CUDA_VISIBLE_DEVICES", g);
    }
    // Its own process group: a Ctrl-C in the terminal reaches the sweep, which forwards one.
    cmd.process_group(0);
    cmd.spawn()
}
