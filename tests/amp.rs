//! Mixed precision through the real trainer and plugins on CPU: bf16 follows fp32's losses,
//! fp16's loss scale skips a phase whose gradients overflow and halves, and a run resumed with
//! its scaler mid-way continues exactly.
use lab_tests::train_quickstart as train;
use lab_tests::*;

#[test]
fn bf16_autocast_follows_the_fp32_losses_closely() {
    let tmp = tempfile::tempdir().unwrap();
    let full = train(&tmp.path().join("fp32"), 8, &[]);
    let bf16 = train(&tmp.path().join("bf16"), 8, &["train.amp=\"bf16\""]);
    for key in ["loss/d", "loss/g"] {
        let (a, b) = (series(&full, key), series(&bf16, key));
        assert_eq!(a.len(), 4, "{key} logged every 2 steps");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(y.is_finite(), "{key}: {b:?}");
            // bf16 keeps 8 bits of mantissa (≈ 0.4% per rounding); after a few steps of
            // training the losses drift apart by about a percent, not more.
            assert!((x - y).abs() <= 0.05 * x.abs().max(0.1), "{key}: fp32 {a:?} against bf16 {b:?}");
        }
        assert_ne!(a, b, "{key}: bf16 must actually change the arithmetic");
    }
    // bf16 needs no loss scale and reads nothing to the host inside steps.
    assert!(series(&bf16, "amp/scale").is_empty());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bf16.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["host_reads_in_steps"], 0);
}

#[test]
fn an_fp16_overflow_skips_the_phase_and_halves_the_scale() {
    // A scale of 2^40 makes every gradient overflow fp16's 65504: each phase is skipped and
    // halves it, so after 4 steps (8 phases) no optimizer has stepped.
    let tmp = tempfile::tempdir().unwrap();
    let r = train(&tmp.path().join("r"), 4, &["train.amp=\"fp16\"", "train.amp_init_scale=1099511627776.0"]);
    assert_eq!(series(&r, "amp/skipped"), vec![1.0, 1.0], "every phase of both logged intervals skipped");
    // Logged: the mean of the scale after each phase of the interval (steps 1–2, then 3–4).
    let after = |phases: i32| 2f64.powi(40 - phases);
    let first = (after(1) + after(2) + after(3) + after(4)) / 4.0;
    let second = (after(5) + after(6) + after(7) + after(8)) / 4.0;
    assert_eq!(series(&r, "amp/scale"), vec![first, second]);
    let c = lab::train::Checkpoint::load(&r.join("checkpoints/last.safetensors")).unwrap();
    assert_eq!(c.metadata["amp.scale"], format!("{:?}", after(8)));
    assert_eq!(c.metadata["amp.skipped"], "8");
    for net in ["generator", "discriminator"] {
        assert_eq!(c.metadata[&format!("optim.{net}.t")], "0", "{net} stepped despite the overflows");
        for (name, t) in &c.tensors {
            if name.starts_with(&format!("optim.{net}.")) {
                assert_eq!(t.abs().max().double_value(&[]), 0.0, "{name}: Adam's state moved");
            }
        }
    }
}

#[test]
fn an_fp16_run_resumed_mid_way_continues_exactly_scale_included() {
    // 2^24 overflows at first and a growth interval of 2 doubles it again soon after, so the
    // scale changes both ways before and after the checkpoint at step 4.
    let tmp = tempfile::tempdir().unwrap();
    let set =
        ["checkpoint.every=4", "train.amp=\"fp16\"", "train.amp_init_scale=16777216.0", "train.amp_growth_interval=2"];
    let full = train(&tmp.path().join("full"), 8, &set);
    let part = train(&tmp.path().join("part"), 4, &set);
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let scale = series(&full, "amp/scale");
    assert!(scale.windows(2).any(|w| w[0] != w[1]), "the scale should move: {scale:?}");
    assert!(series(&full, "loss/g").iter().all(|v| v.is_finite()));
    assert_eq!(deterministic_metrics(&part), deterministic_metrics(&full));
    assert_eq!(checkpoint_tensors_sha256(&part), checkpoint_tensors_sha256(&full));
}
