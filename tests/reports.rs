//! `lab report` end to end on real (tiny) runs: a sweep of DCGAN ± DiffAugment × 2 seeds with
//! FID and IS evaluated by a tiny feature network, then the table, CSV, LaTeX and plots, and the
//! mixed-protocol refusal once one run's protocol is changed.
use std::path::Path;

use lab_tests::*;

fn sets(list: &[String]) -> Vec<String> {
    list.iter().flat_map(|s| ["--set".to_string(), s.clone()]).collect()
}

fn spec(tmp: &Path) -> String {
    format!(
        r#"title = "Fashion-MNIST (tiny): DCGAN with and without DiffAugment"
runs = [{:?}]
filters = {{ "data.dataset" = "fashion-mnist" }}

[rows]
title = "Method"
key = "augment.name"
names = {{ none = "DCGAN", diffaugment = "+ DiffAugment" }}

[columns]
title = "Training data"
key = "data.fraction"
names = {{ "0.01" = "1%", "0.02" = "2%" }}

[[metrics]]
name = "fid"
label = "FID"
format = ".3f"

[[metrics]]
name = "is"
label = "IS"
value = "final"
format = ".3f"
"#,
        tmp.join("runs/quickstart__*/*").display().to_string()
    )
}

#[test]
fn report_from_a_real_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let features = tmp.path().join("tiny.pt");
    let status = std::process::Command::new(root().join(".venv/bin/python3"))
        .arg(root().join("plugins/metrics/src/tests/tiny_net.py"))
        .arg(&features)
        .status()
        .unwrap();
    assert!(status.success());
    let eval = sets(&[
        "eval.every=2".into(),
        "eval.metrics=[\"fid\", \"is\"]".into(),
        "eval.config.is.probs_args=[false]".into(),
        "eval.num_samples=32".into(),
        "eval.reference_count=32".into(),
        "eval.batch_size=16".into(),
        format!("eval.features={:?}", features.display().to_string()),
    ]);
    let out = run(lab()
        .args([
            "sweep",
            "experiments/quickstart.toml",
            "--grid",
            "augment.name=none,diffaugment",
            "--seeds",
            "0,1",
            "--jobs",
            "2",
        ])
        .arg("--runs-dir")
        .arg(tmp.path().join("runs"))
        .arg("--sweep-dir")
        .arg(tmp.path().join("sweep"))
        .args(tiny(4))
        .args(eval)
        .env("LAB_CACHE", tmp.path().join("cache")));
    assert!(out.status.success(), "{}", stderr(&out));

    let spec_path = tmp.path().join("tiny.toml");
    std::fs::write(&spec_path, spec(tmp.path())).unwrap();
    let out_dir = tmp.path().join("out");
    let out = run(lab().arg("report").arg(&spec_path).arg("--out").arg(&out_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("4 run(s) in 2 row(s) × 2 column(s)"), "{}", stdout(&out));

    let md = std::fs::read_to_string(out_dir.join("tiny.md")).unwrap();
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(table[0], "| Method | 1% FID | 1% IS | 2% FID | 2% IS |", "{md}");
    // Both seeds count in the 1% column; nothing ran at 2%, and that is said, not hidden.
    let rows: Vec<Vec<&str>> = table[2..].iter().map(|row| row.split(" | ").collect()).collect();
    for cells in &rows {
        assert!(cells[1].contains(" ± ") && cells[1].trim_matches('*').ends_with("(n=2)"), "{cells:?}");
        assert!(cells[2].trim_matches('*').ends_with("(n=2)"), "{cells:?}");
        assert_eq!(cells[3], "—", "{cells:?}");
    }
    // The best of each 1% column is bold (both, when they print the same).
    for column in [1, 2] {
        assert!(rows.iter().any(|cells| cells[column].starts_with("**")), "column {column}: {md}");
    }
    assert!(md.contains("No finished runs (—): DCGAN @ 2%, + DiffAugment @ 2%."), "{md}");
    let sha = md.split("feature network `tiny.pt` (sha256 ").nth(1).expect("the protocol names the feature network");
    assert!(sha[..64].chars().all(|c| c.is_ascii_hexdigit()), "{md}");
    assert!(md.contains("32 generated samples vs 32 images of the fashion-mnist `test` split"), "{md}");

    let csv = std::fs::read_to_string(out_dir.join("tiny.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2);
    assert!(csv.lines().nth(1).unwrap().starts_with("DCGAN,DCGAN,none,1%,1%,0.01,fid,best,"), "{csv}");
    let tex = std::fs::read_to_string(out_dir.join("tiny.tex")).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("\\multicolumn{2}{c}{1\\%}"), "{tex}");
    for f in ["tiny-fid-1pct.png", "tiny-fid-1pct.svg", "tiny-is-1pct.png", "tiny-is-1pct.svg"] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }

    // One run evaluated differently: the column is refused, naming both protocols.
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("runs/quickstart__augment.name=diffaugment__seed=1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let summary_path = runs[0].join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    summary["eval"]["final"]["protocol"]["num_samples"] = 50_000.into();
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    let out = run(lab().arg("report").arg(&spec_path).arg("--out").arg(&out_dir));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("column `1%` mixes evaluation protocols"), "{err}");
    assert!(err.contains("num_samples = 32") && err.contains("num_samples = 50000"), "{err}");
    assert!(err.contains("allow_mixed_protocols = true"), "{err}");
}

#[test]
fn a_bad_spec_names_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, "title = \"t\"\nruns = [\"runs/*/*\"]\nrows = { key = \"augment.name\" }\nmetrics = [{ name = \"fid\", value = \"median\" }]\n").unwrap();
    let out = run(lab().arg("report").arg(&path));
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: {}: key `metrics[0].value`: unknown variant `median`, expected `best` or `final`",
            path.display()
        )
    );
}
