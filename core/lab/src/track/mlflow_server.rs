//! Test support: a real MLflow tracking server on a free local port, for the MLflow tracker's
//! tests and the end-to-end tests.
//!
//! It runs the project venv's `mlflow server` (the full `mlflow` package pinned in
//! `scripts/requirements.txt`; `mlflow-skinny` has no server) with a SQLite store and proxied
//! artifacts in a folder the caller owns, in its own process group, which is killed on drop.
//! Starting takes 10–20 s, so start one per test binary. The venv is `$LAB_VENV`, else
//! `.venv` at the workspace root.

use std::fs::{self, File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::mlflow::{history_point, MetricPoint};

/// Why the server could not be started or read.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The venv has no `mlflow` executable.
    #[error(
        "{}: not found; install the Python side with scripts/setup.sh (it installs `mlflow` \
         from scripts/requirements.txt into .venv), or point LAB_VENV at a venv that has it",
        path.display()
    )]
    Missing { path: PathBuf },
    /// Spawning or preparing the folder failed.
    #[error("starting `mlflow server` in {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The server exited before answering `/health`.
    #[error("`mlflow server` exited ({status}) before it answered; end of {}:\n{tail}", log.display())]
    Exited {
        status: String,
        log: PathBuf,
        tail: String,
    },
    /// The server did not answer `/health` in time.
    #[error("`mlflow server` did not answer {url} within {secs} s (set LAB_MLFLOW_START_TIMEOUT to wait longer); end of {}:\n{tail}", log.display())]
    Timeout {
        url: String,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
    /// A read-back request failed.
    #[error("MLflow server: {0}")]
    Api(String),
}

/// A running `mlflow server`. Killed (with its whole process group) on drop.
pub struct MlflowServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    uri: String,
}

impl MlflowServer {
    /// Starts a server on a free port, with its SQLite database (`mlflow.db`), artifacts
    /// (`artifacts/`) and log (`server.log`) in `dir`, and waits until `/health` answers
    /// (60 s, or `$LAB_MLFLOW_START_TIMEOUT` seconds).
    pub fn start(dir: &Path) -> Result<Self, ServerError> {
        let port = free_port().map_err(|source| ServerError::Io {
            dir: dir.to_owned(),
            source,
        })?;
        Self::start_on(dir, port)
    }

    /// Starts a server on `port` (see [`start`](Self::start)).
    pub fn start_on(dir: &Path, port: u16) -> Result<Self, ServerError> {
        let mut server = Self {
            child: None,
            port,
            dir: dir.to_owned(),
            uri: format!("http://127.0.0.1:{port}"),
        };
        server.spawn()?;
        Ok(server)
    }

    /// The tracking URI, `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `mlflow` executable of the project venv.
    pub fn mlflow_executable() -> PathBuf {
        let venv = std::env::var_os("LAB_VENV").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
            PathBuf::from,
        );
        venv.join("bin/mlflow")
    }

    /// Kills the server at once (SIGKILL to its process group), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, database and artifact folder (after
    /// [`kill`](Self::kill); a running server is killed first).
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        let exe = Self::mlflow_executable();
        if !exe.exists() {
            return Err(ServerError::Missing { path: exe });
        }
        let io = |source| ServerError::Io {
            dir: self.dir.clone(),
            source,
        };
        fs::create_dir_all(self.dir.join("artifacts")).map_err(io)?;
        let dir = self.dir.canonicalize().map_err(io)?;
        let log_path = dir.join("server.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io)?;
        let log_err = log.try_clone().map_err(io)?;
        let mut cmd = Command::new(&exe);
        cmd.args(["server", "--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--workers", "1", "--backend-store-uri"])
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .arg("--serve-artifacts")
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(io)?;
        self.child = Some(child);
        self.wait_healthy(&log_path)
    }

    fn wait_healthy(&mut self, log: &Path) -> Result<(), ServerError> {
        let secs = std::env::var("LAB_MLFLOW_START_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        let url = format!("{}/health", self.uri);
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let started = Instant::now();
        loop {
            if agent.get(&url).call().is_ok() {
                return Ok(());
            }
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(ServerError::Exited {
                    status: status.to_string(),
                    log: log.to_owned(),
                    tail: tail(log),
                });
            }
            if started.elapsed() > Duration::from_secs(secs) {
                self.kill();
                return Err(ServerError::Timeout {
                    url,
                    secs,
                    log: log.to_owned(),
                    tail: tail(log),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn rest(&self) -> super::mlflow::rest::Rest {
        super::mlflow::rest::Rest::new(&self.uri, Duration::from_secs(5), Duration::from_secs(60))
            .expect("an http URI")
    }

    /// `runs/get`: the run (info and data) as MLflow returns it.
    pub fn run(&self, run_id: &str) -> Result<serde_json::Value, ServerError> {
        self.rest().get_run(run_id).map_err(api)
    }

    /// The run's params (or tags, with `"tags"`) as a map.
    pub fn run_map(
        &self,
        run_id: &str,
        what: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ServerError> {
        let run = self.run(run_id)?;
        Ok(run["data"][what]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| {
                (
                    kv["key"].as_str().unwrap_or_default().to_owned(),
                    kv["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// The whole history of metric `key`, sorted by (step, timestamp).
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>, ServerError> {
        let mut points: Vec<MetricPoint> = self
            .rest()
            .metric_history(run_id, key)
            .map_err(api)?
            .iter()
            .map(history_point)
            .collect();
        points.sort_by_key(|p| (p.step, p.timestamp));
        Ok(points)
    }

    /// Every artifact file of the run, recursively: (path, size in bytes), sorted.
    pub fn artifacts(&self, run_id: &str) -> Result<Vec<(String, u64)>, ServerError> {
        let rest = self.rest();
        let mut out = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            for f in rest.list_artifacts(run_id, &folder).map_err(api)? {
                let path = f["path"].as_str().unwrap_or_default().to_owned();
                if f["is_dir"].as_bool() == Some(true) {
                    folders.push(path);
                } else {
                    let size = f["file_size"]
                        .as_u64()
                        .or_else(|| f["file_size"].as_str().and_then(|s| s.parse().ok()))
                        .unwrap_or(0);
                    out.push((path, size));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Downloads one artifact of the run through the artifact proxy.
    pub fn artifact_bytes(&self, run_id: &str, path: &str) -> Result<Vec<u8>, ServerError> {
        let rest = self.rest();
        let run = self.run(run_id)?;
        let uri = run["info"]["artifact_uri"].as_str().unwrap_or_default();
        let url = rest.artifact_url(uri, path).map_err(ServerError::Api)?;
        rest.get_bytes(&url).map_err(api)
    }
}

impl Drop for MlflowServer {
    /// SIGTERM to the process group, SIGKILL after 5 s.
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

/// A port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn tail(log: &Path) -> String {
    let text = File::open(log)
        .ok()
        .and_then(|mut f| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s)
                .ok()
                .map(|_| s)
        })
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn api(e: super::mlflow::rest::RestError) -> ServerError {
    ServerError::Api(e.to_string())
}
