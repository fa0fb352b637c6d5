//! Event files read back by the real `tensorboard` Python package (`read_events.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tch::Tensor;

use super::*;

/// The project venv's python (override with `LAB_PYTHON`).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("LAB_PYTHON") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3");
    assert!(
        p.exists(),
        "{} is missing: these tests read event files with the `tensorboard` package from the \
         project's venv (create it with scripts/setup.sh, or point LAB_PYTHON at a python with \
         tensorboard and Pillow)",
        p.display()
    );
    p
}

/// Runs `read_events.py` on `dir` and parses its JSON.
fn read_events(dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/track/read_events.py");
    let out = Command::new(python()).arg(&script).arg(dir).arg("--pixels").output().expect("cannot run python");
    assert!(out.status.success(), "read_events.py failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("read_events.py printed no JSON")
}

/// RGB images whose pixels are all different and known: (i, ch, y, x) -> byte.
fn known_rgb(n: i64, h: i64, w: i64) -> (Tensor, impl Fn(i64, i64, i64, i64) -> u8) {
    let byte = |i: i64, ch: i64, y: i64, x: i64| ((i * 41 + ch * 97 + y * 13 + x * 7 + 5) % 256) as u8;
    let mut v = Vec::new();
    for i in 0..n {
        for ch in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    v.push(byte(i, ch, y, x) as f32 / 127.5 - 1.0);
                }
            }
        }
    }
    (Tensor::from_slice(&v).reshape([n, 3, h, w]), byte)
}

#[test]
fn tensorboard_reads_back_scalars_images_text_and_hparams() {
    let dir = tempfile::tempdir().unwrap();
    let mut tb = TensorBoard::create(dir.path()).unwrap();

    // Scalars: several tags and steps, values that float32 cannot hold exactly.
    let steps = [0u64, 10, 20, 1_000_000];
    let value = |tag: usize, step: u64| (tag as f64 + 1.0) * 0.1 + (step as f64).sqrt() / 3.0 - 0.7;
    let tags = ["loss/d", "loss/g", "lr"];
    for &step in &steps {
        let values: Vec<(String, f64)> =
            tags.iter().enumerate().map(|(t, tag)| (tag.to_string(), value(t, step))).collect();
        tb.scalars(step, &values).unwrap();
    }

    // A non-square grid of non-square images: 2 rows x 3 columns of 5x7 (HxW) images.
    let (images, byte) = known_rgb(6, 5, 7);
    let g = grid(&images, 3, 1).unwrap();
    assert_eq!((g.width, g.height), (3 * 8 + 1, 2 * 6 + 1));
    tb.image(10, "samples", &g).unwrap();
    // And a grey one: 1 row of 2 images (the green channel of the first two), no padding.
    let grey = grid(&images.narrow(0, 0, 2).narrow(1, 1, 1), 4, 0).unwrap();
    assert_eq!((grey.width, grey.height, grey.channels), (14, 5, 1));
    tb.image(20, "samples/grey", &grey).unwrap();

    let config = "```toml\n[train]\nsteps = 2000 # ünïcödé\n```\n";
    Tracker::text(&mut tb, "config", config).unwrap();

    let hparams: BTreeMap<String, HParamValue> = [
        ("train.lr".to_string(), HParamValue::from(0.0002)),
        ("loss.name".to_string(), "hinge".into()),
        ("model.ema".to_string(), true.into()),
        ("seed".to_string(), HParamValue::from(0i64)),
    ]
    .into_iter()
    .collect();
    tb.hparams_experiment(&hparams, &["loss/d", "eval/fid"], 1.5e9).unwrap();
    tb.hparams(&hparams, "", 1.5e9).unwrap();
    tb.finish(RunStatus::Finished).unwrap();
    let path = tb.path().to_owned();
    tb.close().unwrap();

    let name = path.file_name().unwrap().to_str().unwrap();
    let parts: Vec<&str> = name.split('.').collect();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    assert_eq!(parts[parts.len() - 2], std::process::id().to_string(), "{name}");

    let ev = read_events(dir.path());
    eprintln!("event file {name}: {} records", ev["records"][name]);

    // Framing and the first record.
    assert_eq!(ev["files"], json!([name]));
    // file_version + 12 scalars + 2 images + 1 text + 3 hparams.
    assert_eq!(ev["records"][name], 1 + 12 + 2 + 1 + 3);
    assert_eq!(ev["first_events"][name]["file_version"], "brain.Event:2");

    // Scalars: exactly the float32 of each value, at each step.
    for (t, tag) in tags.iter().enumerate() {
        let got = ev["scalars"][tag].as_array().unwrap_or_else(|| panic!("no scalars for {tag}: {ev}"));
        assert_eq!(got.len(), steps.len(), "{tag}");
        for (entry, &step) in got.iter().zip(&steps) {
            assert_eq!(entry[0].as_u64().unwrap(), step, "{tag}");
            // TensorBoard widens the stored float32 to a Python float; serde_json may read that
            // double back one ulp off, which narrowing to f32 undoes exactly.
            let stored = entry[1].as_f64().unwrap() as f32;
            assert_eq!(stored.to_bits(), (value(t, step) as f32).to_bits(), "{tag} at step {step}");
        }
        eprintln!("scalars {tag}: {got:?}");
    }
    assert_eq!(ev["scalars"].as_object().unwrap().len(), tags.len());

    // The RGB grid: size, colorspace and every decoded pixel.
    let img = &ev["images"]["samples"][0];
    assert_eq!(img["step"], 10);
    assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(25), Some(13)));
    assert_eq!((img["decoded_width"].as_u64(), img["decoded_height"].as_u64()), (Some(25), Some(13)));
    assert_eq!((img["colorspace"].as_u64(), img["mode"].as_str()), (Some(3), Some("RGB")));
    let pixels: Vec<u8> = img["pixels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
    assert_eq!(pixels, g.pixels);
    assert_eq!(img["pixels_sha256"], format!("{:x}", Sha256::digest(&g.pixels)));
    // Spot checks against the source images, independent of `grid`: image 5 is row 1, col 2.
    let at = |x: usize, y: usize, ch: usize| pixels[(y * 25 + x) * 3 + ch];
    assert_eq!(at(1 + 2 * 8 + 6, 1 + 6 + 4, 0), byte(5, 0, 4, 6));
    assert_eq!(at(1, 1, 2), byte(0, 2, 0, 0));
    assert_eq!(at(1 + 8 + 3, 1 + 2, 1), byte(1, 1, 2, 3));
    assert_eq!(at(0, 0, 0), 0);
    eprintln!(
        "image samples: {}x{} colorspace {} mode {} sha256 {}; pixel (1,1) {:?}, (23,11) {:?}",
        img["width"],
        img["height"],
        img["colorspace"],
        img["mode"],
        img["pixels_sha256"],
        &pixels[(25 + 1) * 3..(25 + 1) * 3 + 3],
        &pixels[(11 * 25 + 23) * 3..(11 * 25 + 23) * 3 + 3]
    );

    let grey_img = &ev["images"]["samples/grey"][0];
    assert_eq!(grey_img["step"], 20);
    assert_eq!((grey_img["width"].as_u64(), grey_img["height"].as_u64()), (Some(14), Some(5)));
    assert_eq!(grey_pixels_at(grey_img, 7 + 6, 4), byte(1, 1, 4, 6));
    assert_eq!((grey_img["colorspace"].as_u64(), grey_img["mode"].as_str()), (Some(1), Some("L")));
    let grey_pixels: Vec<u8> =
        grey_img["pixels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
    assert_eq!(grey_pixels, grey.pixels);

    // Text.
    assert_eq!(ev["texts"]["config"], json!([[0, config]]));
    eprintln!("texts: {}", ev["texts"]);

    // Hparams: the three plugin summaries.
    let hp = &ev["hparams"];
    eprintln!("hparams: {hp}");
    let start = &hp[HPARAMS_SESSION_START_TAG]["session_start_info"];
    assert_eq!(start["hparams"], json!({"train.lr": 0.0002, "loss.name": "hinge", "model.ema": true, "seed": 0.0}));
    assert_eq!(start["start_time_secs"], 1.5e9);
    assert_eq!(hp[HPARAMS_SESSION_END_TAG]["session_end_info"]["status"], "STATUS_SUCCESS");
    let exp = &hp[HPARAMS_EXPERIMENT_TAG]["experiment"];
    let infos: Vec<(String, String)> = exp["hparam_infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap().to_owned(), i["type"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        infos,
        [
            ("loss.name".to_owned(), "DATA_TYPE_STRING".to_owned()),
            ("model.ema".to_owned(), "DATA_TYPE_BOOL".to_owned()),
            ("seed".to_owned(), "DATA_TYPE_FLOAT64".to_owned()),
            ("train.lr".to_owned(), "DATA_TYPE_FLOAT64".to_owned()),
        ]
    );
    assert_eq!(exp["metric_infos"], json!([{"name": {"tag": "loss/d"}}, {"name": {"tag": "eval/fid"}}]));
}

/// Pixel (x, y) of a decoded grey image entry of `read_events.py`'s output (width 14).
fn grey_pixels_at(img: &Value, x: usize, y: usize) -> u8 {
    img["pixels"][y * 14 + x].as_u64().unwrap() as u8
}

#[test]
fn killed_runs_end_as_failures_and_two_writers_never_share_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = TensorBoard::create(dir.path()).unwrap();
    let mut b = TensorBoard::create(dir.path()).unwrap();
    assert_ne!(a.path(), b.path());
    a.hparams(&BTreeMap::new(), "group-a", 1.0).unwrap();
    a.scalars(3, &[("x".into(), 1.0)]).unwrap();
    b.scalars(4, &[("x".into(), 2.0)]).unwrap();
    a.finish(RunStatus::Killed).unwrap();
    // No hparams session in b: finishing writes nothing more.
    b.finish(RunStatus::Failed).unwrap();
    drop((a, b));
    let ev = read_events(dir.path());
    assert_eq!(ev["files"].as_array().unwrap().len(), 2);
    let records: Vec<u64> = ev["records"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(records.iter().sum::<u64>(), (1 + 1 + 2) + (1 + 1));
    assert_eq!(ev["hparams"][HPARAMS_SESSION_END_TAG]["session_end_info"]["status"], "STATUS_FAILURE");
    assert_eq!(ev["hparams"][HPARAMS_SESSION_START_TAG]["session_start_info"]["group_name"], "group-a");
    assert_eq!(ev["scalars"]["x"], json!([[3, 1.0], [4, 2.0]]));
}

#[test]
fn errors_name_the_file_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let err = TensorBoard::create(&missing).unwrap_err().to_string();
    assert!(err.contains("no/such/dir/events.out.tfevents."), "{err}");
    let err = read_metrics(&missing.join("metrics.jsonl")).unwrap_err().to_string();
    assert!(err.contains("no/such/dir/metrics.jsonl"), "{err}");
    let mut tb = TensorBoard::create(dir.path()).unwrap();
    let err = tb.image_png("x", &[], 1, 1, 5, 0, 0.0).unwrap_err().to_string();
    assert!(err.contains("5 channels"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn write_errors_surface_as_results() {
    // /dev/full accepts opens and fails every write with ENOSPC.
    let mut log = MetricsLog::append(Path::new("/dev/full"), 0.0);
    if let Ok(log) = &mut log {
        let err = log.scalars(1, &[("a".into(), 1.0)]).unwrap_err().to_string();
        assert!(err.contains("/dev/full"), "{err}");
    }
}

#[test]
fn both_trackers_behind_one_trait() {
    let dir = tempfile::tempdir().unwrap();
    let mut trackers: Vec<Box<dyn Tracker>> = vec![
        Box::new(MetricsLog::create(&dir.path().join("metrics.jsonl")).unwrap()),
        Box::new(TensorBoard::create(dir.path()).unwrap()),
    ];
    let (images, _) = known_rgb(2, 4, 4);
    let g = grid(&images, 2, 0).unwrap();
    for t in &mut trackers {
        t.scalars(5, &[("loss/d".into(), 0.1), ("loss/g".into(), f64::NAN)]).unwrap();
        t.image(5, "samples", &g).unwrap();
        t.text("config", "x = 1").unwrap();
        t.finish(RunStatus::Finished).unwrap();
    }
    drop(trackers);
    let records = read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!((records[0].step, records[0].key.as_str(), records[0].value), (5, "loss/d", 0.1));
    assert!(records[1].value.is_nan());
    let ev = read_events(dir.path());
    assert_eq!(ev["scalars"]["loss/d"][0][0], 5);
    assert_eq!(ev["scalars"]["loss/g"], json!([[5, "NaN"]]));
    assert_eq!(ev["images"]["samples"][0]["width"], 8);
}
