//! The headline experiment on a tiny CIFAR-format dataset written by the test: the real CIFAR
//! loader, BigGAN, DiffAugment and the hinge loss, through `diffaugment_cifar10_20pct.toml`.
use lab_tests::*;

#[test]
fn diffaugment_cifar10_20pct_trains_on_a_tiny_cifar_set() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_bin(tmp.path(), 20);
    let runs = tmp.path().join("runs");
    let set: Vec<String> = [
        format!("data.root={:?}", tmp.path().display().to_string()),
        "model.config.g_ch=4".into(),
        "model.config.d_ch=4".into(),
        "train.steps=3".into(),
        "train.batch_size=8".into(),
        "eval.metrics=[]".into(),
        "log.every=1".into(),
        "log.samples=10".into(),
        "device=\"cpu\"".into(),
        "data.download=false".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect();
    let out =
        run(lab().args(["run", "experiments/diffaugment_cifar10_20pct.toml", "--runs-dir"]).arg(&runs).args(&set));
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = only_run(&runs, "diffaugment_cifar10_20pct");
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(run_dir.join("config.toml")).unwrap()).unwrap();
    assert_eq!(config["augment"]["config"]["policy"].as_str(), Some("translation,cutout"));
    assert_eq!(config["train"]["d_steps"].as_integer(), Some(4));
    let m = metrics(&run_dir);
    let steps: Vec<u64> = m.iter().filter(|r| r.1 == "loss/d").map(|r| r.0).collect();
    assert_eq!(steps, [1, 2, 3]);
    assert!(m.iter().all(|r| r.2.is_finite()));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap()).unwrap();
    let plugins: Vec<&str> =
        manifest["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(plugins, ["biggan", "hinge", "diffaugment"]);
}

#[test]
fn augment_preview_draws_before_and_after() {
    let tmp = tempfile::tempdir().unwrap();
    let out_png = tmp.path().join("preview.png");
    let out = run(lab()
        .args(["augment-preview", "--augment", "diffaugment", "--n", "4", "--rows", "1", "--out"])
        .arg(&out_png));
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&out_png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
}
