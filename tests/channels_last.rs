//! `train.channels_last` through the real trainer and DCGAN plugin on CPU: the convolution
//! weights move to NHWC order (inside the fused optimizer buffers), training follows the default
//! layout's losses, and reruns and resumes stay bit-exact.
use lab_tests::train_quickstart as train;
use lab_tests::*;

#[test]
fn channels_last_moves_the_conv_weights_and_trains_like_the_default_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let default = train(&tmp.path().join("nchw"), 6, &[]);
    let runs = tmp.path().join("nhwc");
    let mut cmd = lab();
    cmd.env("RUST_LOG", "lab=info").args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(&runs);
    cmd.args(tiny(6)).args(["--quiet", "--set", "train.channels_last=true"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    // The quickstart's DCGAN at 28×28: G is a linear layer to 7×7 maps, then 2 transposed
    // convolutions; D has 2 strided convolutions and the 7×7 head written as a convolution.
    let log = stderr(&out);
    assert!(log.contains("train.channels_last: 2 4-D tensors of `generator` in NHWC order"), "{log}");
    assert!(log.contains("train.channels_last: 3 4-D tensors of `discriminator` in NHWC order"), "{log}");
    let nhwc = only_run(&runs, "quickstart");
    for key in ["loss/d", "loss/g"] {
        let (a, b) = (series(&default, key), series(&nhwc, key));
        assert_eq!(a.len(), 3, "{key} logged every 2 steps");
        for (x, y) in a.iter().zip(&b) {
            // Other kernels sum in another order: float32 rounding apart, no more.
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{key}: NCHW {a:?} against NHWC {b:?}");
        }
    }
}

#[test]
fn a_channels_last_run_reruns_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let set = ["checkpoint.every=4", "train.channels_last=true"];
    let full = train(&tmp.path().join("full"), 8, &set);
    let again = train(&tmp.path().join("again"), 8, &set);
    assert_eq!(deterministic_metrics(&again), deterministic_metrics(&full));
    assert_eq!(checkpoint_tensors_sha256(&again), checkpoint_tensors_sha256(&full));
    let part = train(&tmp.path().join("part"), 4, &set);
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(deterministic_metrics(&part), deterministic_metrics(&full));
    assert_eq!(checkpoint_tensors_sha256(&part), checkpoint_tensors_sha256(&full));
}
