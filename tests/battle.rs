//! `lab battle`: the GAM battle of two run folders, end to end on tiny runs. What must hold
//! whatever the weights: a model battling itself ties exactly, swapping the sides inverts both
//! ratios exactly, the figures agree with each other, and bad requests say what is wrong.
use std::path::{Path, PathBuf};

use lab_tests::{lab, run, stderr, stdout, train_quickstart, zoo_run};

fn battle(a: &Path, b: &Path, args: &[&str]) -> std::process::Output {
    run(lab().arg("battle").arg(a).arg(b).args(["--quiet", "--n", "300"]).args(args))
}

/// `lab battle A B --out FILE`'s figures.
fn figures(a: &Path, b: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let o = battle(a, b, &[&["--out", out.to_str().unwrap()], args].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// A figure; an infinite ratio is written as `"inf"`.
fn f(v: &serde_json::Value) -> f64 {
    match v.as_str() {
        Some("inf") => f64::INFINITY,
        _ => v.as_f64().unwrap_or_else(|| panic!("{v} is not a number")),
    }
}

/// A tiny GRAN run: the paper's own pairing is GRAN against DCGAN.
fn gran(runs: &Path) -> PathBuf {
    let widths =
        ["model.config.z_dim=10", "model.config.g_channels=8", "model.config.d_channels=6", "model.config.d_hidden=5"];
    let fixed =
        ["train.steps=2", "train.batch_size=8", "model.config.eval_count=50", "eval.metrics=[]", "log.samples=10"];
    zoo_run(runs, "gran_fashion_mnist", &[&widths[..], &fixed[..]].concat())
}

#[test]
fn a_model_ties_with_itself_and_swapping_sides_inverts_the_ratios() {
    let tmp = tempfile::tempdir().unwrap();
    let dcgan = train_quickstart(&tmp.path().join("a"), 6, &[]);
    let gran = gran(&tmp.path().join("b"));

    let own = figures(&dcgan, &dcgan, &tmp.path().join("own.json"), &[]);
    assert_eq!(own["r_test"], 1.0);
    assert_eq!(own["r_sample"], 1.0);
    assert_eq!(own["verdict"], "tie");
    assert_eq!(own["models"][0], own["models"][1]);
    assert_eq!(own["test_images"], 300);
    assert_eq!(own["mode"], "train");
    // A class-conditional pair: each D gets the test images' labels and the labels G drew with.
    let conditional = train_quickstart(&tmp.path().join("c"), 4, &["model.config.conditional=true"]);
    let own = figures(&conditional, &conditional, &tmp.path().join("own-c.json"), &[]);
    assert_eq!((&own["r_test"], &own["r_sample"], &own["verdict"]), (&1.0.into(), &1.0.into(), &"tie".into()));

    let ab = figures(&gran, &dcgan, &tmp.path().join("ab.json"), &[]);
    let ba = figures(&dcgan, &gran, &tmp.path().join("ba.json"), &[]);
    // Every draw is keyed by the seed and the batch, not by the side.
    assert_eq!(ab["models"][0], ba["models"][1]);
    assert_eq!(ab["models"][1], ba["models"][0]);
    assert_eq!(ab["models"][0]["architecture"], "gran");
    assert_eq!(ab["models"][1]["step"], 6);
    for side in 0..2 {
        for key in ["test_error", "sample_error"] {
            let e = f(&ab["models"][side][key]);
            assert!((0.0..=1.0).contains(&e), "{key} {e}");
            // Counts of 300 images.
            assert!((e * 300.0 - (e * 300.0).round()).abs() < 1e-9, "{key} {e} is not a count of 300");
        }
    }
    let (m1, m2) = (&ab["models"][0], &ab["models"][1]);
    let ratio = |a: f64, b: f64| if a == 0.0 && b == 0.0 { 1.0 } else { a / b };
    assert_eq!(f(&ab["r_test"]), ratio(f(&m1["test_error"]), f(&m2["test_error"])));
    assert_eq!(f(&ab["r_sample"]), ratio(f(&m1["sample_error"]), f(&m2["sample_error"])));
    let inverse = |x: f64| if x == 0.0 { f64::INFINITY } else { 1.0 / x };
    for r in ["r_test", "r_sample"] {
        let (x, y) = (f(&ab[r]), f(&ba[r]));
        assert!(y == inverse(x) || (y - inverse(x)).abs() < 1e-12, "{r}: {x} vs {y}");
    }
    let flipped = match ab["verdict"].as_str().unwrap() {
        "first_wins" => "second_wins",
        "second_wins" => "first_wins",
        other => other,
    };
    assert_eq!(ba["verdict"], flipped);

    // The other mode judges with running statistics; the seed fixes everything.
    let eval = figures(&gran, &dcgan, &tmp.path().join("eval.json"), &["--mode", "eval"]);
    assert_eq!(eval["mode"], "eval");
    let again = figures(&gran, &dcgan, &tmp.path().join("again.json"), &[]);
    assert_eq!(again, ab);

    // What a user reads.
    let o = battle(&gran, &dcgan, &["--tolerance", "1000"]);
    let text = stdout(&o);
    assert!(text.starts_with("GAM battle (Im et al. 2016) on fashion-mnist: 300 test images, 300 samples per generator, seed 0, discriminators in training mode\n"), "{text}");
    assert!(
        text.contains(&format!("  M1: {} (gran / non-saturating, last checkpoint at step 2)\n", gran.display())),
        "{text}"
    );
    assert!(text.contains("r_test   = "), "{text}");
    assert!(text.contains("winner: M") || text.contains("tie: r_sample = 1"), "{text}");
}

#[test]
fn battles_that_cannot_be_fought_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dcgan = train_quickstart(&tmp.path().join("a"), 2, &[]);
    let conditional = train_quickstart(&tmp.path().join("b"), 2, &["model.config.conditional=true"]);
    let err = |a: &Path, b: &Path, args: &[&str]| {
        let o = battle(a, b, args);
        assert!(!o.status.success());
        stderr(&o)
    };
    assert_eq!(
        err(&dcgan, &conditional, &[]),
        format!(
            "error: the two runs do not model the same thing: {} is fashion-mnist (1×28×28, unconditional), {} is \
             fashion-mnist (1×28×28, conditional on 10 classes); a battle needs two models of the same data with the \
             same conditioning, so that each discriminator can judge the other's samples and one test set\n",
            dcgan.display(),
            conditional.display()
        )
    );
    let o = run(lab().arg("battle").arg(&dcgan).arg(&dcgan).args(["--n", "0"]));
    assert_eq!(stderr(&o), "error: --n must be at least 1, got 0\n");
    assert_eq!(err(&dcgan, &dcgan, &["--tolerance=-1"]), "error: --tolerance must be a non-negative number, got -1\n");
    assert!(
        err(&dcgan, &dcgan, &["--checkpoint", "best"]).contains("best.safetensors: no such checkpoint"),
        "a missing checkpoint is named"
    );
    let nowhere = tmp.path().join("nowhere");
    assert!(err(&nowhere, &dcgan, &[]).starts_with(&format!("error: {}: not a run folder of lab", nowhere.display())));

    // A VAE has no discriminator.
    let set = [
        "train.steps=2",
        "train.batch_size=16",
        "model.config.hidden=8",
        "model.config.z_dim=4",
        "model.config.eval_count=20",
        "eval.every=0",
    ];
    let vae = zoo_run(&tmp.path().join("c"), "vae_fashion_mnist", &set);
    assert_eq!(
        err(&vae, &dcgan, &[]),
        format!(
            "error: {}: architecture `vae` has no network `discriminator` (its networks: encoder, generator); a battle needs a generator and a discriminator\n",
            vae.display()
        )
    );
}
