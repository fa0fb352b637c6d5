//! The headline experiment on a tiny CIFAR-format dataset written by the test: the real CIFAR
//! loader, BigGAN, DiffAugment and the hinge loss, through `diffaugment_cifar10_20pct.toml`.
use lab_tests::*;
use std::io::Write;

/// Writes CIFAR-10's binary format: records of 1 label byte + 3072 bytes of CHW pixels.
fn write_cifar_bin(root: &std::path::Path, per_batch: usize) {
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<String> =
        (1..=5).map(|i| format!("data_batch_{i}.bin")).chain(["test_batch.bin".to_string()]).collect();
    for (f, name) in files.iter().enumerate() {
        let mut out = std::fs::File::create(dir.join(name)).unwrap();
        for r in 0..per_batch {
            let label = ((f * per_batch + r) % 10) as u8;
            out.write_all(&[label]).unwrap();
            let pixels: Vec<u8> =
                (0..3072).map(|p| ((p * 7 + r * 13 + f * 29 + label as usize * 31) % 256) as u8).collect();
            out.write_all(&pixels).unwrap();
        }
    }
}

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
