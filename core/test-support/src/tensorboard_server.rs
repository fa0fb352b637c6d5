//! Test support: the real `tensorboard` server of the project venv over a log folder, on a free
//! 127.0.0.1 port, and the HParams dashboard's own data endpoints
//! (`/data/plugin/hparams/experiment` and `/session_groups`), so tests see runs exactly as the
//! dashboard does. Killed with its process group on drop.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::local_server::{free_port, venv, Launch, LocalServer, ServerError};

const NAME: &str = "tensorboard";

/// A running `tensorboard --logdir DIR`.
pub struct TensorBoardServer {
    _process: LocalServer,
    uri: String,
}

impl TensorBoardServer {
    /// Starts TensorBoard over `logdir` (re-reading it every second) with its log in
    /// `log_dir/tensorboard.log`, and waits until it serves (60 s, or
    /// `$LAB_TENSORBOARD_START_TIMEOUT` seconds).
    pub fn start(logdir: &Path, log_dir: &Path) -> Result<Self, ServerError> {
        let port = free_port(NAME, log_dir)?;
        let uri = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(venv().join("bin/tensorboard"));
        command.arg("--logdir").arg(logdir).args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--reload_interval",
            "1",
        ]);
        let process = LocalServer::start(Launch {
            server: NAME,
            command,
            log: log_dir.join("tensorboard.log"),
            ready_url: format!("{uri}/data/plugins_listing"),
            timeout_env: "LAB_TENSORBOARD_START_TIMEOUT",
            timeout_secs: 60,
        })?;
        Ok(Self { _process: process, uri })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// POSTs a JSON request to one of the HParams plugin's routes and returns its JSON answer.
    pub fn hparams(&self, route: &str, request: &Value) -> Result<Value, ServerError> {
        let url = format!("{}/data/plugin/hparams/{route}", self.uri);
        let api = |message: String| ServerError::Api { server: NAME, message: format!("POST {url}: {message}") };
        let response = ureq::post(&url)
            .timeout(Duration::from_secs(30))
            .set("Content-Type", "application/json")
            .send_string(&request.to_string())
            .map_err(|e| api(e.to_string()))?;
        let text = response.into_string().map_err(|e| api(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| api(format!("{e}: {text}")))
    }

    /// The HParams experiment (its hparam and metric columns).
    pub fn experiment(&self) -> Result<Value, ServerError> {
        self.hparams("experiment", &serde_json::json!({ "experimentName": "" }))
    }

    /// Every session group, as the dashboard's table lists them, with the given columns
    /// (`{"hparam": name}` or `{"metric": {"tag": t}}`; each may carry `"order"` and a filter).
    pub fn session_groups(&self, col_params: &[Value]) -> Result<Value, ServerError> {
        let request = serde_json::json!({
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": col_params,
            "startIndex": 0,
            "sliceSize": 1000,
        });
        self.hparams("session_groups", &request)
    }

    /// Polls `session_groups` until `done` accepts the answer (TensorBoard loads runs in the
    /// background), for at most `timeout`; returns the last answer either way.
    pub fn wait_for_session_groups(
        &self,
        col_params: &[Value],
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, ServerError> {
        let started = Instant::now();
        loop {
            let answer = self.session_groups(col_params);
            match &answer {
                Ok(v) if done(v) => return answer,
                _ if started.elapsed() > timeout => return answer,
                _ => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}
