//! The few MLflow REST calls the tracker needs, over one keep-alive `ureq` agent.
//!
//! Errors come in two kinds, because the tracker treats them differently: [`RestError::Unavailable`]
//! (no answer, a timeout, a 5xx or 429: try again later; the run folder keeps the data) and
//! [`RestError::Rejected`] (a 4xx with MLflow's `error_code`: sending the same request again
//! will not help).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// A failed request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RestError {
    /// The server did not answer, or answered that it cannot serve now.
    #[error("{url}: {detail}")]
    Unavailable { url: String, detail: String },
    /// The server refused the request.
    #[error("{url}: HTTP {status} {code}: {message}")]
    Rejected { url: String, status: u16, code: String, message: String },
}

impl RestError {
    /// What went wrong, without the URL.
    pub fn detail(&self) -> String {
        match self {
            Self::Unavailable { detail, .. } => detail.clone(),
            Self::Rejected { status, code, message, .. } => format!("HTTP {status} {code}: {message}"),
        }
    }

    /// MLflow's error code, for a rejected request.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Rejected { code, .. } => Some(code),
            Self::Unavailable { .. } => None,
        }
    }
}

/// One metric point of a log-batch request; the key is sent as given.
pub struct MetricOut<'a> {
    pub key: &'a str,
    pub value: f64,
    pub step: u64,
    pub timestamp: i64,
}

/// A run's identity on the server.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub artifact_uri: String,
}

/// A client for one tracking server.
#[derive(Debug, Clone)]
pub struct Rest {
    agent: ureq::Agent,
    base: String,
}

impl Rest {
    /// A client for the server at `uri` (`http://host:port`, optionally with a path prefix).
    /// Only HTTP(S) servers are supported.
    pub fn new(uri: &str, connect_timeout: Duration, io_timeout: Duration) -> Result<Self, String> {
        let base = uri.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "MLflow tracking URI `{uri}` is not an http(s):// URL: lab talks to an MLflow \
                 server (`mlflow server --serve-artifacts ...`), not to a local mlruns folder \
                 or another store"
            ));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(connect_timeout)
            .timeout_read(io_timeout)
            .timeout_write(io_timeout)
            .build();
        Ok(Self { agent, base })
    }

    /// The server's URI, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/2.0/mlflow/{path}", self.base)
    }

    /// `GET /api/2.0/mlflow/<path>?<query>`.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, RestError> {
        let url = self.api(path);
        let mut req = self.agent.get(&url);
        for (k, v) in query {
            req = req.query(k, v);
        }
        read_json(&url, req.call())
    }

    /// `POST /api/2.0/mlflow/<path>` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        let url = self.api(path);
        let res = self.agent.post(&url).set("Content-Type", "application/json").send_string(&body.to_string());
        read_json(&url, res)
    }

    /// The experiment called `name`: `Ok(None)` if there is none.
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<Value>, RestError> {
        match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(v) => Ok(Some(v["experiment"].clone())),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an experiment; returns its id.
    pub fn create_experiment(&self, name: &str) -> Result<String, RestError> {
        let v = self.post("experiments/create", &json!({ "name": name }))?;
        Ok(str_field(&v, "experiment_id"))
    }

    /// Creates a run.
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(&str, &str)],
    ) -> Result<RunInfo, RestError> {
        let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect();
        let v = self.post(
            "runs/create",
            &json!({
                "experiment_id": experiment_id,
                "run_name": run_name,
                "start_time": start_time,
                "tags": tags,
            }),
        )?;
        Ok(run_info(&v["run"]["info"]))
    }

    /// The active run of `experiment_id` whose tag `key` is `value`, if any.
    pub fn find_run_by_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<Option<RunInfo>, RestError> {
        let v = self.post(
            "runs/search",
            &json!({
                "experiment_ids": [experiment_id],
                "filter": format!("tags.`{key}` = '{}'", value.replace('\'', "\\'")),
                "max_results": 1,
            }),
        )?;
        Ok(v["runs"].as_array().and_then(|runs| runs.first()).map(|run| run_info(&run["info"])))
    }

    /// `runs/get`: the whole run (info and data) as MLflow returns it.
    pub fn get_run(&self, run_id: &str) -> Result<Value, RestError> {
        Ok(self.get("runs/get", &[("run_id", run_id)])?["run"].clone())
    }

    /// `runs/log-batch`. The caller keeps within MLflow's limits (1000 metrics, 100 params,
    /// 100 tags, 1000 items in all).
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricOut<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), RestError> {
        let metrics: Vec<Value> = metrics
            .iter()
            .map(|m| {
                json!({
                    "key": m.key,
                    "value": json_value(m.value),
                    "timestamp": m.timestamp,
                    "step": m.step,
                })
            })
            .collect();
        let kv = |items: &[(&str, &str)]| -> Vec<Value> {
            items.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect()
        };
        self.post(
            "runs/log-batch",
            &json!({
                "run_id": run_id,
                "metrics": metrics,
                "params": kv(params),
                "tags": kv(tags),
            }),
        )?;
        Ok(())
    }

    /// `runs/update`: sets the status (and the end time, for a final status).
    pub fn update_run(&self, run_id: &str, status: &str, end_time: Option<i64>) -> Result<(), RestError> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        self.post("runs/update", &body)?;
        Ok(())
    }

    /// The whole history of metric `key` of a run, page by page.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Value>, RestError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![("run_id", run_id), ("metric_key", key), ("max_results", "10000")];
            if !token.is_empty() {
                query.push(("page_token", &token));
            }
            let v = self.get("metrics/get-history", &query)?;
            out.extend(v["metrics"].as_array().cloned().unwrap_or_default());
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_owned(),
                _ => return Ok(out),
            }
        }
    }

    /// The proxied-artifact URL of `path` (slash-separated, relative to the run's artifact
    /// root) for a run whose `artifact_uri` is served by this server, i.e. an
    /// `mlflow-artifacts:` URI (what `mlflow server --serve-artifacts` hands out) or an
    /// `http(s)` URL into `/api/2.0/mlflow-artifacts/artifacts/`.
    pub fn artifact_url(&self, artifact_uri: &str, path: &str) -> Result<String, String> {
        const ANCHOR: &str = "/api/2.0/mlflow-artifacts/artifacts/";
        let root = if let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") {
            // `mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host:port/1/...`.
            match rest.strip_prefix("//") {
                Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
                None => rest,
            }
        } else if let Some(i) = artifact_uri.find(ANCHOR) {
            &artifact_uri[i + ANCHOR.len()..]
        } else {
            return Err(format!(
                "the run's artifacts live at `{artifact_uri}`, which lab cannot upload to \
                 through the tracking server: start `mlflow server` with `--serve-artifacts` \
                 (and, for a new experiment, `--artifacts-destination`)"
            ));
        };
        let mut url = format!("{}{}", self.base, ANCHOR.trim_end_matches('/'));
        for segment in root.split('/').chain(path.split('/')) {
            if !segment.is_empty() {
                url.push('/');
                url.push_str(&percent_encode(segment));
            }
        }
        Ok(url)
    }

    /// Uploads the file `local` to `url` (from [`artifact_url`](Self::artifact_url)) with a
    /// streaming `PUT` (with its length, so the server need not handle chunked bodies).
    pub fn put_file(&self, url: &str, local: &Path) -> Result<(), PutError> {
        let file = File::open(local).map_err(PutError::Local)?;
        let len = file.metadata().map_err(PutError::Local)?.len();
        let res = self
            .agent
            .put(url)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &len.to_string())
            .send(file);
        read_json(url, res).map(drop).map_err(PutError::Rest)
    }
}

/// A failed upload.
#[derive(Debug)]
pub enum PutError {
    /// The local file could not be read.
    Local(std::io::Error),
    /// The request failed.
    Rest(RestError),
}

/// (step, timestamp, value) of one entry of a `metrics/get-history` answer.
pub fn history_point(v: &Value) -> (u64, i64, f64) {
    let value = match &v["value"] {
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => other.as_f64().unwrap_or(f64::NAN),
    };
    // Protobuf's JSON may write 64-bit integers as strings; MLflow writes numbers.
    let int = |x: &Value| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    (int(&v["step"]).max(0) as u64, int(&v["timestamp"]), value)
}

/// A metric value as MLflow's JSON takes it: non-finite values as protobuf's strings.
fn json_value(x: f64) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(x)
    }
}

fn run_info(info: &Value) -> RunInfo {
    RunInfo { run_id: str_field(info, "run_id"), artifact_uri: str_field(info, "artifact_uri") }
}

fn str_field(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn read_json(url: &str, res: Result<ureq::Response, ureq::Error>) -> Result<Value, RestError> {
    let res = res.map_err(|e| classify(url, e))?;
    let mut text = String::new();
    res.into_reader().read_to_string(&mut text).map_err(|e| unavailable(url, e))?;
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(&text).map_err(|e| RestError::Unavailable {
        url: url.to_owned(),
        detail: format!("the answer is not JSON ({e}): is this an MLflow server?"),
    })
}

fn classify(url: &str, e: ureq::Error) -> RestError {
    match e {
        ureq::Error::Status(status, res) => {
            let text = res.into_string().unwrap_or_default();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let code = v["error_code"].as_str().unwrap_or("").to_owned();
            let message = v["message"]
                .as_str()
                .or_else(|| v["detail"].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| text.chars().take(300).collect());
            if status >= 500 || status == 429 {
                RestError::Unavailable { url: url.to_owned(), detail: format!("HTTP {status} {code}: {message}") }
            } else {
                RestError::Rejected { url: url.to_owned(), status, code, message }
            }
        }
        // Not `t.to_string()`: that repeats the URL.
        ureq::Error::Transport(t) => {
            let mut detail = t.kind().to_string();
            if let Some(m) = t.message() {
                detail = format!("{detail}: {m}");
            }
            if let Some(source) = std::error::Error::source(&t) {
                detail = format!("{detail}: {source}");
            }
            RestError::Unavailable { url: url.to_owned(), detail }
        }
    }
}

fn unavailable(url: &str, e: impl std::fmt::Display) -> RestError {
    RestError::Unavailable { url: url.to_owned(), detail: e.to_string() }
}

/// Percent-encodes one URL path segment (everything but RFC 3986's unreserved characters).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_urls_follow_the_run_artifact_uri() {
        let rest = Rest::new("http://127.0.0.1:5000/", Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let want = "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/samples/step%20000.png";
        for uri in [
            "mlflow-artifacts:/1/abc/artifacts",
            "mlflow-artifacts://127.0.0.1:5000/1/abc/artifacts",
            "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/",
        ] {
            assert_eq!(rest.artifact_url(uri, "samples/step 000.png").unwrap(), want);
        }
        let err = rest.artifact_url("/tmp/mlruns/1/abc/artifacts", "a").unwrap_err();
        assert!(err.contains("--serve-artifacts"), "{err}");
        assert!(Rest::new("file:///tmp/mlruns", Duration::ZERO, Duration::ZERO).unwrap_err().contains("http"));
    }
}
