//! Test support: a server process from the project venv (`mlflow server`, `tensorboard`) on a
//! free 127.0.0.1 port, in its own process group, waited for until a URL answers, and killed
//! with its whole group on drop. [`MlflowServer`](crate::mlflow_server::MlflowServer) and
//! [`TensorBoardServer`](crate::tensorboard_server::TensorBoardServer) are built on it.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a server could not be started or read.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The venv lacks the executable.
    #[error(
        "{}: not found; install the Python side with scripts/setup.sh (it installs the packages \
         of scripts/requirements.txt into .venv), or point LAB_VENV at a venv that has it",
        path.display()
    )]
    Missing { path: PathBuf },
    /// Spawning or preparing the folder failed.
    #[error("starting `{server}` in {}: {source}", dir.display())]
    Io { server: &'static str, dir: PathBuf, source: std::io::Error },
    /// The server exited before it answered.
    #[error("`{server}` exited ({status}) before it answered; end of {}:\n{tail}", log.display())]
    Exited { server: &'static str, status: String, log: PathBuf, tail: String },
    /// The server did not answer in time.
    #[error("`{server}` did not answer {url} within {secs} s (set {env} to wait longer); end of {}:\n{tail}", log.display())]
    Timeout { server: &'static str, url: String, secs: u64, env: &'static str, log: PathBuf, tail: String },
    /// A read-back request failed.
    #[error("{server}: {message}")]
    Api { server: &'static str, message: String },
}

/// The project venv: `$LAB_VENV`, else `.venv` at the workspace root.
pub fn venv() -> PathBuf {
    std::env::var_os("LAB_VENV")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"), PathBuf::from)
}

/// A port nobody listens on right now, for `server` (whose files go to `dir`, named in the error).
pub fn free_port(server: &'static str, dir: &Path) -> Result<u16, ServerError> {
    let port = || Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    port().map_err(|source| ServerError::Io { server, dir: dir.to_owned(), source })
}

/// How to start one server and know that it is up.
pub struct Launch {
    /// Its name in messages, e.g. `mlflow server`.
    pub server: &'static str,
    /// The command (stdio is set here: output goes to `log`). Its program is a path, which must
    /// exist ([`ServerError::Missing`] otherwise).
    pub command: Command,
    /// Where its stdout and stderr are appended.
    pub log: PathBuf,
    /// A URL that answers 2xx once it serves.
    pub ready_url: String,
    /// The variable that overrides `timeout_secs`.
    pub timeout_env: &'static str,
    pub timeout_secs: u64,
}

/// A running server process. SIGTERM to its group on drop, SIGKILL after 5 s.
pub struct LocalServer {
    child: Option<Child>,
}

impl LocalServer {
    /// Spawns the command in its own process group and waits until `ready_url` answers.
    pub fn start(launch: Launch) -> Result<Self, ServerError> {
        let Launch { server, mut command, log, ready_url, timeout_env, timeout_secs } = launch;
        let program = PathBuf::from(command.get_program());
        if !program.exists() {
            return Err(ServerError::Missing { path: program });
        }
        let dir = log.parent().unwrap_or(Path::new(".")).to_path_buf();
        let io = |source| ServerError::Io { server, dir: dir.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let out = OpenOptions::new().create(true).append(true).open(&log).map_err(io)?;
        let err = out.try_clone().map_err(io)?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(io)?;
        let mut me = Self { child: Some(child) };
        let secs = std::env::var(timeout_env).ok().and_then(|s| s.parse().ok()).unwrap_or(timeout_secs);
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        let started = Instant::now();
        loop {
            if agent.get(&ready_url).call().is_ok() {
                return Ok(me);
            }
            let child = me.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                me.child = None;
                return Err(ServerError::Exited { server, status: status.to_string(), tail: tail(&log), log });
            }
            if started.elapsed() > Duration::from_secs(secs) {
                me.kill();
                return Err(ServerError::Timeout {
                    server,
                    url: ready_url,
                    secs,
                    env: timeout_env,
                    tail: tail(&log),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Kills it at once (SIGKILL to its process group), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(&child, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    // Workers may outlive the parent for a moment.
                    signal_group(&child, libc::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

fn signal_group(child: &Child, signal: libc::c_int) {
    // The child leads its own process group (process_group(0)), so its pid is the group id.
    // SAFETY: sending a signal involves no memory; a gone group gives ESRCH, ignored.
    unsafe {
        libc::killpg(child.id() as libc::pid_t, signal);
    }
}

/// The last 20 lines of a log.
fn tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        let _ = std::io::Read::read_to_string(&mut f, &mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
