//! The MLflow tracker against a real `mlflow server` (started once, in one test function that
//! runs every scenario in order), plus the pure helpers.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab_test_support::mlflow_server::MlflowServer;

use super::uploader::stored_bits;
use super::watermark::{read_rows, Watermark};
use super::*;
use crate::track::{read_metrics, MetricsLog, RunStatus, Tracker};

/// The run folders' `config.toml`: two params.
const CONFIG: &str = "seed = 0\n[train]\nsteps = 300\n";

const KEYS: [&str; 4] = ["loss/d", "loss/g", "d/real_logit", "perf/img_per_s"];

/// A deterministic value for (key, step), with NaN, ±infinity and -0.0 among them.
fn value(k: usize, step: u64) -> f64 {
    match (k, step % 97) {
        (0, 13) => f64::NAN,
        (0, 29) => f64::INFINITY,
        (1, 31) => f64::NEG_INFINITY,
        (1, 37) => -0.0,
        _ => ((step as f64 + 1.0) * (k as f64 + 0.1)).sin() / 3.0 + k as f64 * 1e-17,
    }
}

/// A run folder as the trainer leaves it: config, manifest, two sample grids.
fn run_folder(root: &Path, name: &str) -> PathBuf {
    let run = root.join(name);
    fs::create_dir_all(run.join("samples")).unwrap();
    fs::write(run.join("config.toml"), CONFIG).unwrap();
    fs::write(run.join("manifest.json"), "{\"status\":\"running\"}\n").unwrap();
    for (i, step) in [0u32, 50].iter().enumerate() {
        let img =
            image::RgbImage::from_fn(16, 8 + i as u32, |x, y| image::Rgb([x as u8 * 16, y as u8 * 30, *step as u8]));
        img.save(run.join(format!("samples/step_{step:06}.png"))).unwrap();
    }
    run
}

/// What the trainer does each logging step: `metrics.jsonl` and the MLflow tracker get the
/// same values. Returns the slowest `scalars` call of the MLflow tracker.
fn log_steps(tracker: &mut MlflowTracker, metrics: &mut MetricsLog, steps: std::ops::Range<u64>) -> Duration {
    let mut slowest = Duration::ZERO;
    for step in steps {
        let values: Vec<(String, f64)> =
            KEYS.iter().enumerate().map(|(k, key)| (key.to_string(), value(k, step))).collect();
        metrics.scalars(step, &values).unwrap();
        let t = Instant::now();
        tracker.scalars(step, &values).unwrap();
        slowest = slowest.max(t.elapsed());
    }
    slowest
}

/// What the trainer does at the end: summary, manifest with the final status, then `finish`.
fn finish_run(tracker: &mut MlflowTracker, metrics: &mut MetricsLog, status: RunStatus) -> Duration {
    let run = tracker.run_dir().to_owned();
    let name = match status {
        RunStatus::Finished => "finished",
        RunStatus::Failed => "failed",
        RunStatus::Killed => "killed",
    };
    fs::write(run.join("summary.json"), format!("{{\"status\":\"{name}\"}}\n")).unwrap();
    fs::write(
        run.join("manifest.json"),
        format!("{{\"status\":\"{name}\",\"finished\":\"2026-01-02T03:04:05+00:00\"}}\n"),
    )
    .unwrap();
    metrics.finish(status).unwrap();
    let t = Instant::now();
    tracker.finish(status).unwrap();
    t.elapsed()
}

/// Rows of `metrics.jsonl`, and how many of them the watermark says the server confirmed.
fn rows_and_sent(run: &Path) -> (u64, u64) {
    let rows = read_metrics(&run.join("metrics.jsonl")).map_or(0, |r| r.len() as u64);
    (rows, Watermark::load(run).unwrap().metric_rows)
}

/// Waits until the server confirmed every row of `metrics.jsonl`.
fn wait_all_sent(run: &Path, within: Duration) {
    let t = Instant::now();
    loop {
        let (rows, sent) = rows_and_sent(run);
        if sent == rows {
            return;
        }
        assert!(t.elapsed() < within, "{}: {sent} of {rows} rows sent after {within:?}", run.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's histories, key by key: (step, value bits as stored, timestamp).
fn histories(server: &MlflowServer, run_id: &str) -> BTreeMap<String, Vec<(u64, u64, i64)>> {
    KEYS.iter()
        .map(|key| {
            let points = server.metric_history(run_id, key).unwrap();
            let points = points.iter().map(|p| (p.step, stored_bits(p.value), p.timestamp)).collect();
            (key.to_string(), points)
        })
        .collect()
}

/// Asserts that the server holds exactly `metrics.jsonl` (same keys, count, steps and values,
/// in the form the server stores them); returns the number of points.
fn assert_history_is_metrics_jsonl(server: &MlflowServer, run_id: &str, run: &Path) -> usize {
    let records = read_metrics(&run.join("metrics.jsonl")).unwrap();
    let server_side = histories(server, run_id);
    let mut total = 0;
    for key in KEYS {
        let want: Vec<(u64, u64)> =
            records.iter().filter(|r| r.key == key).map(|r| (r.step, stored_bits(r.value))).collect();
        let got: Vec<(u64, u64)> = server_side[key].iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(got.len(), want.len(), "{key}: point count");
        assert_eq!(got, want, "{key}: steps and values");
        total += got.len();
    }
    assert_eq!(total, records.len());
    total
}

fn state(run: &Path) -> MlflowState {
    MlflowState::load(run).unwrap()
}

fn quick_options() -> MlflowOptions {
    MlflowOptions {
        batch_window: Duration::from_millis(100),
        finish_timeout: Duration::from_secs(20),
        ..MlflowOptions::default()
    }
}

#[test]
fn flatten_config_dots_keys_and_stringifies_arrays() {
    let table: toml::Table = toml::from_str(
        r#"
        seed = 3
        name = "cifar"
        [train]
        lr = 0.0002
        betas = [0.0, 0.99]
        amp = false
        [model.config]
        channels = [64, 128]
        names = ["a", "b"]
        [empty]
        [[augment.pipeline]]
        name = "translation"
        "#,
    )
    .unwrap();
    let flat = flatten_config(table);
    let want: BTreeMap<String, String> = [
        ("augment.pipeline", r#"[{ name = "translation" }]"#),
        ("model.config.channels", "[64, 128]"),
        ("model.config.names", r#"["a", "b"]"#),
        ("name", "cifar"),
        ("seed", "3"),
        ("train.amp", "false"),
        ("train.betas", "[0.0, 0.99]"),
        ("train.lr", "0.0002"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(flat, want);
}

#[test]
fn long_values_are_cut_with_a_marker_and_keys_made_valid() {
    assert_eq!(truncate_value("short", 10), "short");
    let long = "é".repeat(7000);
    let cut = truncate_value(&long, MAX_PARAM_VALUE);
    assert_eq!(cut.chars().count(), MAX_PARAM_VALUE);
    assert!(cut.ends_with("...[truncated, 7000 characters]"), "{}", &cut[cut.len() - 40..]);
    assert_eq!(mlflow_key("loss/d"), "loss/d");
    assert_eq!(mlflow_key("D(x) mean"), "D_x_ mean");
    assert_eq!(mlflow_key(&"k".repeat(300)).len(), MAX_KEY);
}

/// Every scenario against one real server: a full run, the server killed mid-run and
/// `sync`, the server unreachable at start, the server back while the run goes on, and a
/// run dropped without `finish` then resumed.
#[test]
fn mlflow_tracking_against_a_real_server() {
    let root = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut server = MlflowServer::start(&root.path().join("server")).unwrap();
    eprintln!("mlflow server up at {} in {:.1} s", server.uri(), t.elapsed().as_secs_f64());

    full_run(&server, root.path());
    killed_mid_run(&mut server, root.path());
    unreachable_at_start(&server, root.path());
    back_while_running(&mut server, root.path());
    dropped_then_resumed(&server, root.path());
    eprintln!("all scenarios in {:.1} s", t.elapsed().as_secs_f64());
}

fn full_run(server: &MlflowServer, root: &Path) {
    let run = run_folder(root, "full");
    let config = format!(
        "seed = 0\n[train]\nlr = 0.0002\nbetas = [0.0, 0.99]\n[model]\narchitecture = \"dcgan\"\n\
         [model.config]\nchannels = [64, 128, 256]\nnote = \"{}\"\n",
        "x".repeat(7000)
    );
    fs::write(run.join("config.toml"), &config).unwrap();
    let params = flatten_config(toml::from_str(&config).unwrap());
    let tags: BTreeMap<String, String> =
        [("git.commit", "0123abcd"), ("lab.version", "0.1.0"), ("lab.plugins", "dcgan 0.1.0, losses 0.1.0")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    let mut metrics = MetricsLog::create(&run.join("metrics.jsonl")).unwrap();
    let t = Instant::now();
    let mut tracker =
        MlflowTracker::start_with(server.uri(), "lab-tests", "full", &run, &tags, &quick_options()).unwrap();
    let started = t.elapsed();
    let run_id = tracker.run_id().expect("the server is up").to_owned();
    let slowest = log_steps(&mut tracker, &mut metrics, 0..300);

    // A sync while the tracker is live is refused: it could send rows twice.
    let err = sync(&run, None).unwrap_err().to_string();
    assert!(err.contains("another process") && err.contains("mlflow.lock"), "{err}");

    let finished = finish_run(&mut tracker, &mut metrics, RunStatus::Finished);
    assert_eq!(rows_and_sent(&run), (1200, 1200), "every row confirmed");

    let got = server.run(&run_id).unwrap();
    let info = &got["info"];
    let st = state(&run);
    assert_eq!(info["status"], "FINISHED");
    assert_eq!(info["run_name"], "full");
    assert_eq!(info["start_time"].as_i64(), Some(st.start_time));
    assert!(info["end_time"].as_i64().unwrap() >= st.start_time);

    let server_params = server.run_map(&run_id, "params").unwrap();
    assert_eq!(server_params.len(), params.len());
    for (k, v) in &params {
        assert_eq!(server_params[k], truncate_value(v, MAX_PARAM_VALUE), "param {k}");
    }
    assert_eq!(server_params["model.config.channels"], "[64, 128, 256]");
    assert_eq!(server_params["model.config.note"].chars().count(), MAX_PARAM_VALUE);
    let server_tags = server.run_map(&run_id, "tags").unwrap();
    for (k, v) in &tags {
        assert_eq!(&server_tags[k], v, "tag {k}");
    }
    assert_eq!(server_tags[RUN_UID_TAG], st.run_uid);
    assert!(server_tags[RUN_DIR_TAG].ends_with("/full"));

    let points = assert_history_is_metrics_jsonl(server, &run_id, &run);
    assert_eq!(points, 1200);

    let mut want: Vec<(String, u64)> = [
        "config.toml",
        "manifest.json",
        "summary.json",
        "metrics.jsonl",
        "samples/step_000000.png",
        "samples/step_000050.png",
    ]
    .iter()
    .map(|p| (p.to_string(), fs::metadata(run.join(p)).unwrap().len()))
    .collect();
    want.sort();
    assert_eq!(server.artifacts(&run_id).unwrap(), want);
    assert_eq!(
        server.artifact_bytes(&run_id, "samples/step_000050.png").unwrap(),
        fs::read(run.join("samples/step_000050.png")).unwrap()
    );

    let before = histories(server, &run_id);
    let again = sync(&run, None).unwrap();
    assert!(again.is_empty(), "{again}");
    assert_eq!(histories(server, &run_id), before);
    eprintln!(
        "full run: start {:.0} ms, slowest scalars() {:.2} ms, finish {:.0} ms; {points} metric \
         points, {} params, {} tags, {} artifacts on the server; second sync: {again}",
        started.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
        finished.as_secs_f64() * 1e3,
        server_params.len(),
        server_tags.len(),
        want.len()
    );
}

fn killed_mid_run(server: &mut MlflowServer, root: &Path) {
    let run = run_folder(root, "killed");
    let options = MlflowOptions { retry_interval: Duration::from_secs(600), ..quick_options() };
    let mut metrics = MetricsLog::create(&run.join("metrics.jsonl")).unwrap();
    let mut tracker =
        MlflowTracker::start_with(server.uri(), "lab-tests", "killed", &run, &BTreeMap::new(), &options).unwrap();
    let run_id = tracker.run_id().unwrap().to_owned();
    log_steps(&mut tracker, &mut metrics, 0..100);
    wait_all_sent(&run, Duration::from_secs(10));
    let sent_before_kill = rows_and_sent(&run).1;

    server.kill();
    let slowest = log_steps(&mut tracker, &mut metrics, 100..250);
    std::thread::sleep(Duration::from_millis(300)); // a batch goes out and fails
    let finished = finish_run(&mut tracker, &mut metrics, RunStatus::Failed);
    let (rows, sent) = rows_and_sent(&run);
    let unsent = rows - sent;
    assert_eq!(sent, sent_before_kill, "nothing confirmed while down");
    assert!(finished < Duration::from_secs(5), "finish waited {finished:?}");

    let t = Instant::now();
    server.restart().unwrap();
    let restart = t.elapsed();
    let on_server: usize = histories(server, &run_id).values().map(Vec::len).sum();
    assert_eq!(on_server, 400, "the 100 steps sent before the kill");

    let report = sync(&run, None).unwrap();
    assert!(!report.created_run);
    assert_eq!(report.run_id, run_id);
    assert_eq!(report.metrics, 600);
    assert_eq!(report.status, Some(MlflowStatus::Failed));
    assert_eq!(report.artifacts, 6);
    assert_eq!(report.already_on_server, 0);
    assert!(report.rejected.is_empty(), "{report}");
    assert_eq!(assert_history_is_metrics_jsonl(server, &run_id, &run), 1000);
    assert_eq!(server.run(&run_id).unwrap()["info"]["status"], "FAILED");

    let after_sync = histories(server, &run_id);
    let end_time = server.run(&run_id).unwrap()["info"]["end_time"].clone();
    let second = sync(&run, None).unwrap();
    assert!(second.is_empty(), "{second}");
    assert_eq!(histories(server, &run_id), after_sync);
    assert_eq!(server.run(&run_id).unwrap()["info"]["end_time"], end_time);

    // The server stored the last 300 rows but its answer was lost: the watermark as a crash
    // between the request and its confirmation leaves it. Those rows must not be sent again.
    let confirmed = Watermark::load(&run).unwrap();
    let kept = read_rows(&run.join("metrics.jsonl"), 0, (rows - 300) as usize, 0).unwrap();
    let last = kept.last().unwrap();
    let rewound = Watermark {
        metric_rows: rows - 300,
        metric_bytes: last.end,
        last_row: last.line.clone(),
        in_flight_end: Some(confirmed.metric_bytes),
        ..confirmed.clone()
    };
    rewound.save(&run).unwrap();
    let third = sync(&run, None).unwrap();
    assert_eq!(third.metrics, 0, "{third}");
    assert_eq!(third.already_on_server, 300);
    assert_eq!(histories(server, &run_id), after_sync);
    assert_eq!(Watermark::load(&run).unwrap(), confirmed);

    // A watermark that no longer fits metrics.jsonl (the file was rewritten) puts every row in
    // doubt: all of them are found on the server, none is sent again.
    Watermark { last_row: "{}".into(), ..confirmed.clone() }.save(&run).unwrap();
    let fourth = sync(&run, None).unwrap();
    assert_eq!((fourth.metrics, fourth.already_on_server), (0, 1000), "{fourth}");
    assert_eq!(histories(server, &run_id), after_sync);

    // No watermark at all (a folder tracked by an older lab, or the file deleted) for a run
    // that exists: the same. Params, tags, status and artifacts are simply sent again.
    fs::remove_file(run.join(watermark::WATERMARK_FILE)).unwrap();
    let fifth = sync(&run, None).unwrap();
    assert_eq!((fifth.metrics, fifth.already_on_server, fifth.artifacts), (0, 1000, 6), "{fifth}");
    assert_eq!(histories(server, &run_id), after_sync);
    assert_eq!(server.run(&run_id).unwrap()["info"]["end_time"], end_time);
    eprintln!(
        "killed mid-run: {sent_before_kill} rows sent before the kill, {unsent} written \
         after; slowest scalars() while down {:.2} ms, finish {:.0} ms, restart {:.1} s; \
         sync: {report}; second sync sends nothing; with 300 rows in flight, they were found on \
         the server and not resent; with the watermark not fitting the file, or gone, none of 1000",
        slowest.as_secs_f64() * 1e3,
        finished.as_secs_f64() * 1e3,
        restart.as_secs_f64()
    );
}

fn unreachable_at_start(server: &MlflowServer, root: &Path) {
    let run = run_folder(root, "offline");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("http://127.0.0.1:{closed}");
    let tags = BTreeMap::from([("git.commit".to_owned(), "feedbeef".to_owned())]);
    let mut metrics = MetricsLog::create(&run.join("metrics.jsonl")).unwrap();
    let t = Instant::now();
    let mut tracker = MlflowTracker::start_with(&uri, "lab-offline", "offline", &run, &tags, &quick_options()).unwrap();
    let started = t.elapsed();
    assert!(tracker.run_id().is_none());
    assert!(started < Duration::from_secs(2), "start took {started:?}");
    let slowest = log_steps(&mut tracker, &mut metrics, 0..50);
    let finished = finish_run(&mut tracker, &mut metrics, RunStatus::Finished);
    assert!(finished < Duration::from_secs(2), "finish took {finished:?}");
    assert_eq!(rows_and_sent(&run), (200, 0));
    assert_eq!(state(&run).run_id, None);
    let start_time = state(&run).start_time;

    // The recorded server is still down: the sync fails, says so, and changes nothing.
    let err = sync(&run, None).unwrap_err().to_string();
    assert!(err.contains("cannot sync") && err.contains(&uri) && err.contains("nothing is sent twice"), "{err}");
    assert!(err.contains("200 rows of metrics.jsonl are not on the server yet"), "{err}");
    assert_eq!(rows_and_sent(&run), (200, 0));

    let report = sync(&run, Some(server.uri())).unwrap();
    assert!(report.created_run);
    assert_eq!(report.metrics, 200);
    assert_eq!(report.params, 2, "seed and train.steps of config.toml");
    assert_eq!(report.tags, 2, "git.commit and lab.run_dir");
    assert_eq!(report.artifacts, 6);
    assert_eq!(report.status, Some(MlflowStatus::Finished));
    let st = state(&run);
    assert_eq!(st.uri, server.uri());
    let run_id = st.run_id.clone().unwrap();
    let info = server.run(&run_id).unwrap()["info"].clone();
    assert_eq!(info["status"], "FINISHED");
    assert_eq!(info["run_name"], "offline");
    assert_eq!(info["start_time"].as_i64(), Some(start_time), "the start time recorded while offline");
    assert_eq!(server.run_map(&run_id, "tags").unwrap()["git.commit"], "feedbeef");
    assert_eq!(assert_history_is_metrics_jsonl(server, &run_id, &run), 200);
    let again = sync(&run, None).unwrap();
    assert!(again.is_empty(), "{again}");
    eprintln!(
        "unreachable at start: start {:.0} ms, slowest scalars() {:.2} ms, finish {:.0} ms; \
         sync: {report}",
        started.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
        finished.as_secs_f64() * 1e3
    );
}

fn back_while_running(server: &mut MlflowServer, root: &Path) {
    let run = run_folder(root, "back");
    let options = MlflowOptions {
        retry_interval: Duration::from_millis(500),
        max_retry_interval: Duration::from_secs(1),
        ..quick_options()
    };
    let mut metrics = MetricsLog::create(&run.join("metrics.jsonl")).unwrap();
    let mut tracker =
        MlflowTracker::start_with(server.uri(), "lab-tests", "back", &run, &BTreeMap::new(), &options).unwrap();
    let run_id = tracker.run_id().unwrap().to_owned();
    log_steps(&mut tracker, &mut metrics, 0..50);
    wait_all_sent(&run, Duration::from_secs(10));
    server.kill();
    log_steps(&mut tracker, &mut metrics, 50..100);
    std::thread::sleep(Duration::from_millis(300));
    server.restart().unwrap();
    log_steps(&mut tracker, &mut metrics, 100..150);
    let t = Instant::now();
    wait_all_sent(&run, Duration::from_secs(20));
    let caught_up = t.elapsed();
    finish_run(&mut tracker, &mut metrics, RunStatus::Finished);
    assert_eq!(assert_history_is_metrics_jsonl(server, &run_id, &run), 600);
    let report = sync(&run, None).unwrap();
    assert!(report.is_empty(), "{report}");
    eprintln!(
        "server back while running: the tracker caught up by itself {:.1} s after the restart; \
         600 points, sync had nothing to send",
        caught_up.as_secs_f64()
    );
}

fn dropped_then_resumed(server: &MlflowServer, root: &Path) {
    let run = run_folder(root, "dropped");
    let mut metrics = MetricsLog::create(&run.join("metrics.jsonl")).unwrap();
    let start = |server: &MlflowServer| {
        MlflowTracker::start_with(server.uri(), "lab-tests", "dropped", &run, &BTreeMap::new(), &quick_options())
            .unwrap()
    };
    let mut tracker = start(server);
    let run_id = tracker.run_id().unwrap().to_owned();
    log_steps(&mut tracker, &mut metrics, 0..20);
    drop(tracker); // a process that ends without finish
    let report = sync(&run, None).unwrap();
    assert_eq!(report.status, Some(MlflowStatus::Killed), "{report}");
    let info = server.run(&run_id).unwrap()["info"].clone();
    assert_eq!(info["status"], "KILLED");
    let last_row = read_metrics(&run.join("metrics.jsonl")).unwrap().pop().unwrap();
    let last_metric = state(&run).start_time + (last_row.time * 1000.0).round() as i64;
    assert_eq!(info["end_time"].as_i64(), Some(last_metric), "the time of the last metric");

    // Resuming continues the same MLflow run.
    let mut tracker = start(server);
    assert_eq!(tracker.run_id(), Some(run_id.as_str()));
    log_steps(&mut tracker, &mut metrics, 20..40);
    finish_run(&mut tracker, &mut metrics, RunStatus::Finished);
    assert_eq!(server.run(&run_id).unwrap()["info"]["status"], "FINISHED");
    assert_eq!(assert_history_is_metrics_jsonl(server, &run_id, &run), 160);
    assert!(sync(&run, None).unwrap().is_empty());
    eprintln!("dropped without finish: sync marked it KILLED; resumed into the same run, FINISHED");
}

/// A sink for log lines.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An unreachable server gives one warning line for the whole run, naming metrics.jsonl and
/// the sync command, however often sending fails. (No server needed.)
#[test]
fn an_unreachable_server_gives_one_warning_line() {
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || sink.clone()).with_ansi(false).finish();
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("skipped: another test installed a global tracing subscriber first");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let run = run_folder(root.path(), "warn");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = MlflowOptions {
        retry_interval: Duration::from_millis(20),
        max_retry_interval: Duration::from_millis(20),
        ..quick_options()
    };
    let mut metrics = MetricsLog::create(&run.join("metrics.jsonl")).unwrap();
    let mut tracker =
        MlflowTracker::start_with(&format!("http://127.0.0.1:{closed}"), "e", "warn", &run, &BTreeMap::new(), &options)
            .unwrap();
    for chunk in 0..10 {
        log_steps(&mut tracker, &mut metrics, chunk * 10..chunk * 10 + 10);
        std::thread::sleep(Duration::from_millis(50)); // several retries fail meanwhile
    }
    finish_run(&mut tracker, &mut metrics, RunStatus::Finished);
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let run_text = run.display().to_string();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&run_text)).collect();
    assert_eq!(lines.len(), 1, "{text}");
    let want = format!("{run_text}/metrics.jsonl keeps every metric and `lab sync {run_text}` will send them");
    assert!(lines[0].contains("WARN") && lines[0].ends_with(&want), "{}", lines[0]);
    eprintln!("{}", lines[0]);
}
