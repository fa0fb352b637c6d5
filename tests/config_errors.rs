//! Bad input gets exact, useful messages: the file, the key, what was expected, what to do.
use lab_tests::*;

/// Runs `lab run` on `toml` (plus `--set`s) and returns stderr with the temp folder redacted.
fn error_for(toml: &str, set: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, toml).unwrap();
    let mut cmd = lab();
    cmd.arg("run").arg(&file).arg("--runs-dir").arg(tmp.path().join("runs")).args(["--set", "device=\"cpu\""]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(!out.status.success(), "expected a failure");
    stderr(&out).replace(&tmp.path().display().to_string(), "<tmp>").trim().to_string()
}

#[test]
fn unknown_key() {
    insta::assert_snapshot!(error_for("[train]\nsteps = 10\nbatch_sise = 8\n", &[]));
}

#[test]
fn unknown_top_level_section() {
    insta::assert_snapshot!(error_for("[trian]\nsteps = 10\n", &[]));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(error_for("[train]\nsteps = \"ten\"\n", &[]));
}

#[test]
fn wrong_type_from_set() {
    insta::assert_snapshot!(error_for("", &["optim.lr=fast"]));
}

#[test]
fn unknown_plugin() {
    insta::assert_snapshot!(error_for("[loss]\nname = \"hinje\"\n", &["data.fraction=0.01"]));
}

#[test]
fn bad_plugin_config_key() {
    insta::assert_snapshot!(error_for("[model.config]\ng_chanels = 8\n", &["data.fraction=0.01"]));
}

#[test]
fn bad_plugin_config_type() {
    insta::assert_snapshot!(error_for("[model.config]\nz_dim = \"big\"\n", &["data.fraction=0.01"]));
}

#[test]
fn invalid_value() {
    insta::assert_snapshot!(error_for("[data]\nfraction = 1.5\n", &[]));
}

#[test]
fn missing_file() {
    let out = run(lab().args(["run", "experiments/does_not_exist.toml"]));
    assert!(!out.status.success());
    insta::assert_snapshot!(stderr(&out).trim());
}

#[test]
fn unknown_optimizer_kind() {
    insta::assert_snapshot!(error_for("[optim]\nkind = \"adamw\"\n", &[]));
}

#[test]
fn an_optimizer_key_for_another_kind() {
    insta::assert_snapshot!(error_for("[optim.networks.discriminator]\nkind = \"sgd\"\nbetas = [0.0, 0.9]\n", &[]));
}

#[test]
fn unknown_schedule_kind() {
    insta::assert_snapshot!(error_for("[optim.schedule]\nkind = \"cosine\"\n", &[]));
}

#[test]
fn a_power_schedule_ending_above_the_rate_it_starts_at() {
    insta::assert_snapshot!(error_for(
        "[optim]\nlr = 1e-4\n[optim.schedule]\nkind = \"power\"\nevery = 250\nfloor = 0.01\n",
        &[]
    ));
}

#[test]
fn a_constraint_on_a_network_that_does_not_exist() {
    insta::assert_snapshot!(error_for("[optim.networks.critic]\nclip = 0.01\n", &["train.steps=1"]));
}

#[test]
fn standing_statistics_for_a_generator_without_batch_norm() {
    insta::assert_snapshot!(error_for(
        "[model]\narchitecture = \"gan-mlp\"\n[eval]\nstanding_stats = 8\n",
        &["train.steps=1", "data.fraction=0.01"]
    ));
}

#[test]
fn a_phase_naming_a_network_the_architecture_does_not_declare() {
    insta::assert_snapshot!(error_for("[[train.phases]]\nname = \"D\"\nnetworks = [\"critic\"]\n", &["train.steps=1"]));
}

#[test]
fn a_batch_larger_than_the_data_is_a_config_error_before_training() {
    let runs = tempfile::tempdir().unwrap();
    let out = run(lab().args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(runs.path()).args([
        "--set",
        "data.fraction=0.01",
        "--set",
        "train.batch_size=100000000",
        "--set",
        "device=\"cpu\"",
    ]));
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim_end(),
        "error: experiments/quickstart.toml: key `train.batch_size`: a batch of 100000000 is larger than the data: fashion-mnist holds 600 images of [1, 28, 28] (after data.fraction = 0.01); lower train.batch_size to at most 600 or use more of the data"
    );
}

#[test]
fn deterministic_takes_true_false_or_portable() {
    insta::assert_snapshot!(error_for("deterministic = \"yes\"\n", &[]));
}

#[test]
fn augment_apply_takes_both_or_reals() {
    insta::assert_snapshot!(error_for("[augment]\nname = \"diffaugment\"\napply = \"fakes\"\n", &[]));
}

#[test]
fn amp_takes_false_bf16_or_fp16() {
    insta::assert_snapshot!(error_for("[train]\namp = true\n", &[]));
}

#[test]
fn an_fp16_loss_scale_must_be_positive() {
    insta::assert_snapshot!(error_for("[train]\namp = \"fp16\"\namp_init_scale = 0.0\n", &[]));
}
