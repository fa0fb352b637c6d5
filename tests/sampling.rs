//! `lab sample`: synthetic datasets exported from a run, read back by lab's own loaders and by
//! numpy and PIL; deterministic per seed; bad input refused with nothing left behind.
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::{lab, only_run, root, run, stderr, stdout, tiny};

/// A tiny trained run of the quickstart DCGAN: conditional or not, on Fashion-MNIST, or on the
/// procedural `shapes` set at 32×32 RGB (for the CIFAR-10 format).
fn trained(runs: &Path, conditional: bool, rgb: bool) -> PathBuf {
    let mut cmd = lab();
    cmd.args(["run", "experiments/quickstart.toml", "--quiet", "--runs-dir"]).arg(runs).args(tiny(2));
    cmd.args(["--set", &format!("model.config.conditional={conditional}")]);
    if rgb {
        for s in [
            "data.dataset=\"shapes\"",
            "data.image_size=32",
            "data.channels=3",
            "data.synthetic_count=64",
            "data.fraction=1.0",
        ] {
            cmd.args(["--set", s]);
        }
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    only_run(runs, "quickstart")
}

fn sample(run_dir: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    run(lab().arg("sample").arg(run_dir).arg("--out").arg(out).args(args))
}

fn python(script: &str) -> String {
    // From a file: TorchScript's compiler reads the source of what it scripts.
    let file = tempfile::Builder::new().suffix(".py").tempfile().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let out = Command::new(root().join(".venv/bin/python")).arg(file.path()).output().expect("python runs");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_format_round_trips_with_the_same_pixels_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = trained(&tmp.path().join("runs"), true, false);
    let out = tmp.path().join("out");
    for format in ["png", "npz", "idx"] {
        let o = sample(&run_dir, &out.join(format), &["--n", "30", "--format", format, "--seed", "1"]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with(&format!(
                "wrote 30 images (labels balanced over 10 classes) to {}",
                out.join(format).display()
            )),
            "{}",
            stdout(&o)
        );
    }
    // lab's own loaders: IDX as `mnist`, the PNG folder as `image-folder` (classes from the
    // zero-padded subfolders).
    let idx = lab::data::idx::load_dir("mnist", &out.join("idx"), "train").unwrap();
    assert_eq!(idx.images.size(), [30, 1, 28, 28]);
    let y: Vec<i64> = Vec::try_from(idx.labels.as_ref().unwrap()).unwrap();
    assert_eq!(y, (0..30).map(|i| i % 10).collect::<Vec<_>>(), "balanced: class i mod 10");
    let png = lab::data::folder::load(&out.join("png"), 28, 1).unwrap();
    assert_eq!(png.num_classes, 10);
    // The folder loader orders by path (class, then index): image k of class c is sample 10k + c.
    let order: Vec<i64> = (0..10).flat_map(|c| (0..3).map(move |k| 10 * k + c)).collect();
    let idx_in_folder_order = idx.images.index_select(0, &tch::Tensor::from_slice(&order));
    assert!(png.images.equal(&idx_in_folder_order), "PNG and IDX hold the same pixels");

    // numpy and PIL read what lab wrote, and agree with the IDX bytes.
    let checked = python(&format!(
        r#"
import glob, os, numpy as np
from PIL import Image
d = np.load({npz:?})
x, y = d["x"], d["y"]
assert x.shape == (30, 28, 28, 1) and x.dtype == np.uint8 and y.dtype == np.int64, (x.shape, x.dtype, y.dtype)
assert (y == np.arange(30) % 10).all()
raw = open(os.path.join({idx:?}, "train-images-idx3-ubyte"), "rb").read()[16:]
assert (np.frombuffer(raw, np.uint8).reshape(30, 28, 28) == x[..., 0]).all()
for path in glob.glob(os.path.join({png:?}, "*", "*.png")):
    i, c = int(os.path.basename(path)[:-4]), int(os.path.basename(os.path.dirname(path)))
    assert c == y[i] and (np.asarray(Image.open(path)) == x[i, ..., 0]).all(), path
print(len(glob.glob(os.path.join({png:?}, "*", "*.png"))))
"#,
        npz = out.join("npz").display().to_string(),
        idx = out.join("idx").display().to_string(),
        png = out.join("png").display().to_string(),
    ));
    assert_eq!(checked, "30");

    // Provenance: the checkpoint's hash, the seed, the counts.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("png/samples.json")).unwrap()).unwrap();
    assert_eq!(meta["seed"], 1);
    assert_eq!(meta["count"], 30);
    assert_eq!(meta["per_class"], serde_json::json!([3, 3, 3, 3, 3, 3, 3, 3, 3, 3]));
    assert_eq!(meta["checkpoint_sha256"].as_str().unwrap().len(), 64);
    assert!(out.join("npz.json").is_file(), "an npz's provenance sits beside it");
    // A picture of the export: a row per class of ten 28×28 cells with 2-pixel padding.
    let preview = python(&format!(
        "from PIL import Image; print(Image.open({:?}).size)",
        out.join("png.preview.png").display().to_string()
    ));
    assert_eq!(preview, "(302, 302)");
    assert!(out.join("npz.preview.png").is_file() && out.join("idx/preview.png").is_file());
    assert!(!out.join("png/preview.png").exists(), "nothing but samples among the PNG folder's images");

    // The same seed gives the same bytes; another seed other images.
    let again = sample(&run_dir, &out.join("png-again"), &["--n", "30", "--format", "png", "--seed", "1"]);
    assert!(again.status.success());
    let strip =
        |v: Vec<(PathBuf, Vec<u8>)>| v.into_iter().filter(|(p, _)| p != Path::new("samples.json")).collect::<Vec<_>>();
    assert!(strip(files(&out.join("png"))) == strip(files(&out.join("png-again"))), "same seed, same files");
    let other = sample(&run_dir, &out.join("npz-2"), &["--n", "30", "--format", "npz", "--seed", "2"]);
    assert!(other.status.success());
    assert_ne!(
        std::fs::read(out.join("npz")).unwrap(),
        std::fs::read(out.join("npz-2")).unwrap(),
        "another seed, other images"
    );
    let again = sample(&run_dir, &out.join("npz-again"), &["--n", "30", "--format", "npz", "--seed", "1"]);
    assert!(again.status.success());
    assert_eq!(
        std::fs::read(out.join("npz")).unwrap(),
        std::fs::read(out.join("npz-again")).unwrap(),
        "npz: same seed, same bytes"
    );

    // Counts per class, and truncation.
    let o = sample(&run_dir, &out.join("counts"), &["--labels", "3=4,7=2", "--format", "idx", "--truncation", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let counts = lab::data::idx::load_dir("mnist", &out.join("counts"), "train").unwrap();
    assert_eq!(Vec::<i64>::try_from(counts.labels.as_ref().unwrap()).unwrap(), [3, 3, 3, 3, 7, 7]);
}

#[test]
fn cifar_batches_round_trip_through_the_cifar10_loader() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = trained(&tmp.path().join("runs"), true, true);
    let out = tmp.path().join("cifar");
    let o = sample(&run_dir, &out, &["--n", "12", "--format", "cifar"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let npz = tmp.path().join("same.npz");
    assert!(sample(&run_dir, &npz, &["--n", "12", "--format", "npz"]).status.success());
    let ds = lab::data::cifar::load_bin_dir(&out, "train").unwrap();
    assert_eq!(ds.images.size(), [12, 3, 32, 32]);
    assert_eq!(Vec::<i64>::try_from(ds.labels.as_ref().unwrap()).unwrap(), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    let sum: i64 = ds.images.to_kind(tch::Kind::Int64).sum(tch::Kind::Int64).int64_value(&[]);
    let numpy_sum = python(&format!(
        "import numpy as np; print(int(np.load({:?})['x'].astype(np.int64).sum()))",
        npz.display().to_string()
    ));
    assert_eq!(sum.to_string(), numpy_sum, "CIFAR batches and npz hold the same pixels");
}

#[test]
fn bad_requests_are_refused_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = trained(&tmp.path().join("runs"), false, false);
    let out = tmp.path().join("out");
    let err = |args: &[&str]| {
        let o = sample(&run_dir, &out, args);
        assert!(!o.status.success());
        assert!(!out.exists(), "nothing written for {args:?}");
        stderr(&o)
    };
    assert_eq!(
        err(&["--n", "5", "--labels", "balanced"]),
        "error: --labels needs a class-conditional model, and this run's generator is unconditional; export without --labels\n"
    );
    assert_eq!(
        err(&["--n", "5", "--format", "cifar"]),
        "error: --format cifar holds 3×32×32 colour images; this model makes 1×28×28; use png, npz or idx\n"
    );
    assert_eq!(err(&[]), "error: --n is required: how many images to generate\n");
    assert!(err(&["--n", "5", "--checkpoint", "best"]).contains("best.safetensors: no such checkpoint"));
    // An occupied output is refused unless --overwrite; then replaced whole.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("mine.txt"), "keep").unwrap();
    let o = sample(&run_dir, &out, &["--n", "5"]);
    assert_eq!(
        stderr(&o),
        format!(
            "error: {} exists and is not empty; choose another --out, or pass --overwrite to replace it\n",
            out.display()
        )
    );
    assert!(out.join("mine.txt").exists());
    let o = sample(&run_dir, &out, &["--n", "5", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("mine.txt").exists() && out.join("00004.png").is_file());
    // A class out of range, on a conditional run.
    let cond = trained(&tmp.path().join("runs-c"), true, false);
    let o = sample(&cond, &tmp.path().join("c"), &["--labels", "10=5"]);
    assert_eq!(stderr(&o), "error: --labels: class 10 is out of range: this model has 10 classes (0 to 9)\n");
    // A folder that is not a run.
    let o = sample(tmp.path(), &tmp.path().join("d"), &["--n", "5"]);
    assert!(
        stderr(&o).starts_with(&format!("error: {}: not a run folder of lab", tmp.path().display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn cas_is_computed_by_lab_eval_and_needs_a_conditional_model() {
    let tmp = tempfile::tempdir().unwrap();
    let conditional = trained(&tmp.path().join("runs-c"), true, false);
    let eval = |run_dir: &Path| {
        run(lab().arg("eval").arg(run_dir).args(["--metrics", "cas", "--num-samples", "60"]).args([
            "--set",
            "eval.reference_count=60",
            "--set",
            "eval.config.cas.epochs=1",
            "--set",
            "eval.batch_size=30",
        ]))
    };
    let out = eval(&conditional);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let value = |name: &str| -> f64 {
        let line =
            text.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_else(|| panic!("{name} in {text}"));
        line[name.len() + 2..].parse().unwrap()
    };
    for name in ["cas/acc", "cas/real_acc"] {
        assert!((0.0..=1.0).contains(&value(name)), "{name}: {text}");
    }
    assert!((value("cas/ratio") - value("cas/acc") / value("cas/real_acc")).abs() < 1e-9);
    assert!(!text.contains("cas/augment"), "the augmentation arm is off by default: {text}");

    // The augmentation arm: the core feeds the run's own training set (1% of Fashion-MNIST's
    // 60,000 = 600 images), and the arm adds 6 samples of each class to it.
    let result = tmp.path().join("augment.json");
    let out = run(lab()
        .arg("eval")
        .arg(&conditional)
        .args(["--metrics", "cas", "--num-samples", "60"])
        .arg("--out")
        .arg(&result)
        .args(
            [
                "eval.reference_count=60",
                "eval.config.cas.epochs=1",
                "eval.batch_size=30",
                "eval.config.cas.augment_per_class=6",
                "eval.config.cas.augment_steps=2",
                "eval.config.cas.augment_seeds=2",
            ]
            .iter()
            .flat_map(|s| ["--set", s]),
        ));
    assert!(out.status.success(), "{}", stderr(&out));
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    let values = &saved["values"];
    assert_eq!(values["cas/augment/train_count"], 600.0, "{saved}");
    let (real, mixed, gain) = (
        values["cas/augment/real_acc"].as_f64().unwrap(),
        values["cas/augment/mixed_acc"].as_f64().unwrap(),
        values["cas/augment/gain"].as_f64().unwrap(),
    );
    assert!((0.0..=1.0).contains(&real) && (0.0..=1.0).contains(&mixed), "{saved}");
    assert!((gain - (mixed - real)).abs() < 1e-9, "{saved}");
    let training_set = &saved["protocol"]["reference"]["training_set"];
    assert_eq!((training_set["count"].as_i64(), training_set["fraction"].as_f64()), (Some(600), Some(0.01)), "{saved}");
    assert_eq!(saved["protocol"]["metrics"]["cas"]["augment"]["per_class"], 6, "{saved}");

    let unconditional = trained(&tmp.path().join("runs-u"), false, false);
    let out = eval(&unconditional);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("cas needs labelled samples: a class-conditional generator (its samples came without labels)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unconditional_model_is_labelled_by_a_torchscript_classifier() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = trained(&tmp.path().join("runs"), false, false);
    // A classifier written in the test: class 1 when the image's mean is above 0, else class 0.
    let classifier = tmp.path().join("brightness.pt");
    python(&format!(
        r#"
import torch
class Brightness(torch.nn.Module):
    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], 1) * 10.0
torch.jit.script(Brightness()).save({:?})
"#,
        classifier.display().to_string()
    ));
    let out = tmp.path().join("labelled.npz");
    let o = sample(&run_dir, &out, &["--n", "24", "--format", "npz", "--label-with", classifier.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The labels are the classifier's, recomputed in numpy from the exported pixels.
    let checked = python(&format!(
        r#"
import numpy as np
d = np.load({:?})
x = d["x"].astype(np.float64) / 127.5 - 1.0
expected = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
assert (d["y"] == expected).all(), (d["y"], expected)
print("ok")
"#,
        out.display().to_string()
    ));
    assert_eq!(checked, "ok");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("labelled.json")).unwrap()).unwrap();
    assert_eq!(meta["labels"], "classifier");
    assert_eq!(meta["label_with"]["sha256"].as_str().unwrap().len(), 64);
    let confidence = meta["label_with"]["mean_confidence"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&confidence), "{confidence}");
    assert_eq!(meta["per_class"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).sum::<i64>(), 24);

    // Not a TorchScript file; and a conditional model's labels are exact.
    std::fs::write(tmp.path().join("junk.pt"), "not a model").unwrap();
    let o = sample(
        &run_dir,
        &tmp.path().join("x"),
        &["--n", "4", "--label-with", tmp.path().join("junk.pt").to_str().unwrap()],
    );
    assert!(
        stderr(&o).starts_with(&format!("error: cannot load the classifier {}", tmp.path().join("junk.pt").display())),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--label-with takes a TorchScript file"), "{}", stderr(&o));
    let conditional = trained(&tmp.path().join("runs-c"), true, false);
    let o = sample(&conditional, &tmp.path().join("y"), &["--n", "4", "--label-with", classifier.to_str().unwrap()]);
    assert!(stderr(&o).contains("--label-with labels an unconditional model's samples"), "{}", stderr(&o));
}

#[test]
fn a_disk_that_fills_mid_export_leaves_no_output_and_no_partial_files() {
    // A file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes the kernel refuse the export's
    // writes past 1 MB, as a full disk would: 4000 images of 28×28 need 3.1 MB in one .npz.
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = trained(&tmp.path().join("runs"), true, false);
    let out_dir = tmp.path().join("export");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("synthetic.npz");
    let mut limited = Command::new("bash");
    lab_tests::lab_environment(&mut limited);
    limited
        .args(["-c", "trap '' XFSZ; ulimit -f 1024; exec \"$0\" \"$@\""])
        .arg(lab_tests::lab_bin())
        .arg("sample")
        .arg(&run_dir)
        .arg("--out")
        .arg(&out)
        .args(["--n", "4000", "--format", "npz"]);
    let result = run(&mut limited);
    assert!(!result.status.success());
    let err = stderr(&result);
    assert!(err.contains("File too large"), "{err}");
    let left: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, Vec::<String>::new(), "nothing that could pass for an export, and no partial files: {err}");
    // With room, the same command exports.
    let result = sample(&run_dir, &out, &["--n", "4000", "--format", "npz"]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(out.is_file());
}

#[test]
fn standing_statistics_follow_the_run_unless_the_command_overrides_them() {
    // A conditional DCGAN whose evaluations used standing statistics: `lab sample` samples with
    // the same by default, records it in samples.json, and `--standing-stats 0` goes back to the
    // running statistics (other pixels). The same request twice gives the same bytes.
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let out = run(lab()
        .args(["run", "experiments/quickstart.toml", "--quiet", "--runs-dir"])
        .arg(&runs)
        .args(tiny(2))
        .args(["--set", "model.config.conditional=true", "--set", "eval.standing_stats=2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = only_run(&runs, "quickstart");
    let export = |name: &str, extra: &[&str]| -> (serde_json::Value, Vec<u8>) {
        let dir = tmp.path().join(name);
        let mut args = vec!["--n", "20", "--format", "idx", "--batch-size", "10"];
        args.extend_from_slice(extra);
        let o = sample(&run_dir, &dir, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let provenance = serde_json::from_str(&std::fs::read_to_string(dir.join("samples.json")).unwrap()).unwrap();
        (provenance, std::fs::read(dir.join("train-images-idx3-ubyte")).unwrap())
    };
    let (run_default, pixels) = export("default", &[]);
    assert_eq!(run_default["standing_stats"], 2, "{run_default}");
    let (again, pixels_again) = export("again", &["--standing-stats", "2"]);
    assert_eq!(again["standing_stats"], 2);
    assert_eq!(pixels, pixels_again, "the run's setting and the same flag are one request");
    let (running, running_pixels) = export("running", &["--standing-stats", "0"]);
    assert!(running.get("standing_stats").is_none(), "{running}");
    assert_ne!(pixels, running_pixels, "the statistics decide the pixels");
}
