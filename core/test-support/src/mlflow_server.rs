//! Test support: a real MLflow tracking server on a free local port, for the MLflow tracker's
//! tests and the end-to-end tests.
//!
//! It runs the project venv's `mlflow server` (the full `mlflow` package pinned in
//! `scripts/requirements.txt`; `mlflow-skinny` has no server) with a SQLite store and proxied
//! artifacts in a folder the caller owns, in its own process group, which is killed on drop.
//! Starting takes 10–20 s, so start one per test binary. The venv is `$LAB_VENV`, else
//! `.venv` at the workspace root.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

pub use crate::local_server::ServerError;
use crate::local_server::{free_port, venv, Launch, LocalServer};

const NAME: &str = "mlflow server";

/// A running `mlflow server`. Killed (with its whole process group) on drop.
pub struct MlflowServer {
    process: Option<LocalServer>,
    port: u16,
    dir: PathBuf,
    uri: String,
}

impl MlflowServer {
    /// Starts a server on a free port, with its SQLite database (`mlflow.db`), artifacts
    /// (`artifacts/`) and log (`server.log`) in `dir`, and waits until `/health` answers
    /// (60 s, or `$LAB_MLFLOW_START_TIMEOUT` seconds).
    pub fn start(dir: &Path) -> Result<Self, ServerError> {
        Self::start_on(dir, free_port(NAME, dir)?)
    }

    /// Starts a server on `port` (see [`start`](Self::start)).
    pub fn start_on(dir: &Path, port: u16) -> Result<Self, ServerError> {
        let mut server = Self { process: None, port, dir: dir.to_owned(), uri: format!("http://127.0.0.1:{port}") };
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
        venv().join("bin/mlflow")
    }

    /// Kills the server at once (SIGKILL to its process group), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts the server again on the same port, database and artifact folder (after
    /// [`kill`](Self::kill); a running server is killed first).
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        let io = |source| ServerError::Io { server: NAME, dir: self.dir.clone(), source };
        std::fs::create_dir_all(self.dir.join("artifacts")).map_err(io)?;
        let dir = self.dir.canonicalize().map_err(io)?;
        let mut command = Command::new(Self::mlflow_executable());
        command
            .args(["server", "--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--workers", "1", "--backend-store-uri"])
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .arg("--serve-artifacts")
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true");
        self.process = Some(LocalServer::start(Launch {
            server: NAME,
            command,
            log: dir.join("server.log"),
            ready_url: format!("{}/health", self.uri),
            timeout_env: "LAB_MLFLOW_START_TIMEOUT",
            timeout_secs: 60,
        })?);
        Ok(())
    }

    /// `GET /api/2.0/mlflow/<path>` with `query`, as JSON.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ServerError> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.uri);
        let mut request = ureq::get(&url).timeout(Duration::from_secs(60));
        for (k, v) in query {
            request = request.query(k, v);
        }
        let text = request.call().map_err(|e| api(&url, e))?.into_string().map_err(|e| api(&url, e))?;
        serde_json::from_str(&text).map_err(|e| api(&url, e))
    }

    /// `runs/get`: the run (info and data) as MLflow returns it.
    pub fn run(&self, run_id: &str) -> Result<serde_json::Value, ServerError> {
        Ok(self.get("runs/get", &[("run_id", run_id)])?["run"].clone())
    }

    /// The run's params (or tags, with `"tags"`) as a map.
    pub fn run_map(&self, run_id: &str, what: &str) -> Result<BTreeMap<String, String>, ServerError> {
        let run = self.run(run_id)?;
        Ok(run["data"][what]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| {
                (kv["key"].as_str().unwrap_or_default().to_owned(), kv["value"].as_str().unwrap_or_default().to_owned())
            })
            .collect())
    }

    /// The whole history of metric `key`, sorted by (step, timestamp).
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>, ServerError> {
        let mut points = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![("run_id", run_id), ("metric_key", key), ("max_results", "10000")];
            if !token.is_empty() {
                query.push(("page_token", &token));
            }
            let page = self.get("metrics/get-history", &query)?;
            points.extend(page["metrics"].as_array().into_iter().flatten().map(MetricPoint::from_json));
            match page["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_owned(),
                _ => break,
            }
        }
        points.sort_by_key(|p| (p.step, p.timestamp));
        Ok(points)
    }

    /// Every artifact file of the run, recursively: (path, size in bytes), sorted.
    pub fn artifacts(&self, run_id: &str) -> Result<Vec<(String, u64)>, ServerError> {
        let mut out = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let mut query = vec![("run_id", run_id)];
            if !folder.is_empty() {
                query.push(("path", &folder));
            }
            for f in self.get("artifacts/list", &query)?["files"].as_array().into_iter().flatten() {
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

    /// Downloads one artifact of the run through the server's artifact proxy (the run's
    /// `artifact_uri` is `mlflow-artifacts:/<experiment>/<run>/artifacts` with
    /// `--serve-artifacts`).
    pub fn artifact_bytes(&self, run_id: &str, path: &str) -> Result<Vec<u8>, ServerError> {
        let run = self.run(run_id)?;
        let root = run["info"]["artifact_uri"].as_str().unwrap_or_default();
        let Some(root) = root.strip_prefix("mlflow-artifacts:") else {
            return Err(ServerError::Api { server: NAME, message: format!("artifacts not proxied: {root}") });
        };
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{}/{path}", self.uri, root.trim_matches('/'));
        let response = ureq::get(&url).timeout(Duration::from_secs(60)).call().map_err(|e| api(&url, e))?;
        let mut bytes = Vec::new();
        response.into_reader().read_to_end(&mut bytes).map_err(|e| api(&url, e))?;
        Ok(bytes)
    }
}

/// One point of a metric history as the server returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// Training step.
    pub step: u64,
    /// The value as the server stores it: its SQL store gives ±infinity back as ±`f64::MAX`
    /// and -0.0 as 0.0; NaN comes back as NaN.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl MetricPoint {
    fn from_json(v: &Value) -> Self {
        // Non-finite values come as protobuf's strings; 64-bit integers may come as strings.
        let value = match &v["value"] {
            Value::String(s) if s == "Infinity" => f64::INFINITY,
            Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
            other => other.as_f64().unwrap_or(f64::NAN),
        };
        let int = |x: &Value| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
        Self { step: int(&v["step"]).max(0) as u64, value, timestamp: int(&v["timestamp"]) }
    }
}

fn api(url: &str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Api { server: NAME, message: format!("{url}: {e}") }
}
