//! `lab run` tracked by a real MLflow server, started here on 127.0.0.1 and stopped after:
//! params, metric histories and status read back; a dead server spools and `lab sync` replays.
use lab::track::mlflow_server::MlflowServer;
use lab_tests::*;

#[test]
fn lab_run_tracks_to_mlflow_and_sync_replays_after_an_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let server = MlflowServer::start(&tmp.path().join("mlflow")).expect("mlflow server starts");
    let uri = server.uri().to_string();
    let runs = tmp.path().join("runs");
    let out = run(lab().args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(&runs).args(tiny(6)).env("MLFLOW_TRACKING_URI", &uri));
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = only_run(&runs, "quickstart");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("mlflow.json")).unwrap()).unwrap();
    let run_id = state["run_id"].as_str().unwrap().to_string();
    let info = server.run(&run_id).unwrap();
    assert_eq!(info["info"]["status"], "FINISHED", "{info}");
    let history = points(server.metric_history(&run_id, "loss/d").unwrap());
    let jsonl: Vec<(u64, f64)> = metrics(&run_dir).into_iter().filter(|m| m.1 == "loss/d").map(|m| (m.0, m.2)).collect();
    assert_eq!(history, jsonl, "every logged step reaches MLflow");
    let params = server.run_map(&run_id, "params").unwrap();
    assert_eq!(params.get("train.batch_size").map(String::as_str), Some("16"), "{params:?}");
    assert_eq!(params.get("model.architecture").map(String::as_str), Some("dcgan"));

    // Server down for a whole run: training finishes, everything is spooled, sync replays it once.
    let dead = "http://127.0.0.1:9"; // discard port: nothing listens
    let runs2 = tmp.path().join("runs2");
    let out = run(lab().args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(&runs2).args(tiny(6)).env("MLFLOW_TRACKING_URI", dead));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("spooling"), "{}", stderr(&out));
    let run2 = only_run(&runs2, "quickstart");
    let out = run(lab().args(["sync"]).arg(&run2).args(["--uri", &uri]));
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run2.join("mlflow.json")).unwrap()).unwrap();
    let run_id2 = state["run_id"].as_str().unwrap().to_string();
    let expected: Vec<(u64, f64)> = metrics(&run2).into_iter().filter(|m| m.1 == "loss/g").map(|m| (m.0, m.2)).collect();
    assert_eq!(points(server.metric_history(&run_id2, "loss/g").unwrap()), expected);
    let out = run(lab().args(["sync"]).arg(&run2).args(["--uri", &uri]));
    assert!(out.status.success());
    assert!(stdout(&out).contains("up to date"), "{}", stdout(&out));
    assert_eq!(points(server.metric_history(&run_id2, "loss/g").unwrap()), expected, "a second sync changes nothing");
}

fn points(history: Vec<lab::track::mlflow::MetricPoint>) -> Vec<(u64, f64)> {
    history.into_iter().map(|p| (p.step, p.value)).collect()
}
