use super::*;

fn write(dir: &std::path::Path, text: &str) -> PathBuf {
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn load_text(text: &str, set: &[&str]) -> Result<Experiment, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), text);
    let sources = Sources { file: Some(file), env: false, set: set.iter().map(|s| s.to_string()).collect() };
    Experiment::load(&sources).map_err(|e| e.to_string().replace(&dir.path().display().to_string(), "<dir>"))
}

#[test]
fn layering_and_set() {
    let e = load_text(
        "name = \"x\"\n[train]\nsteps = 5\n",
        &["train.batch_size=8", "optim.betas=[0.0, 0.9]", "loss.name=hinge"],
    )
    .unwrap();
    assert_eq!(e.name, "x");
    assert_eq!(e.train.steps, 5);
    assert_eq!(e.train.batch_size, 8);
    assert_eq!(e.optim.betas, [0.0, 0.9]);
    assert_eq!(e.loss.name, "hinge");
}

#[test]
fn unknown_key_names_file_and_suggests() {
    let err = load_text("[train]\nsetps = 5\n", &[]).unwrap_err();
    assert_eq!(err, "<dir>/exp.toml: unknown key `train.setps`; did you mean `train.steps`? valid keys in [train]: amp, amp_growth_interval, amp_init_scale, batch_size, channels_last, d_steps, phases, steps");
}

#[test]
fn wrong_type_names_key() {
    let err = load_text("[train]\nsteps = \"many\"\n", &[]).unwrap_err();
    assert_eq!(err, "<dir>/exp.toml: key `train.steps`: expected a non-negative integer, found string \"many\"");
}

#[test]
fn set_errors_name_the_flag() {
    let err = load_text("", &["train.steps=-3"]).unwrap_err();
    assert!(err.starts_with("--set: key `train.steps`"), "{err}");
}

#[test]
fn cross_field_rules() {
    let err = load_text("[train]\nd_steps = 0\n", &[]).unwrap_err();
    assert_eq!(
        err,
        "<dir>/exp.toml: key `train.d_steps`: expected at least 1 discriminator step per generator step, found 0"
    );
}

#[test]
fn a_leading_tilde_in_eval_features_is_the_home_folder() {
    let home = std::env::var("HOME").expect("HOME is set");
    let e = load_text("[eval]\nfeatures = \"~/.cache/lab/f.pt\"\n", &[]).unwrap();
    assert_eq!(e.eval.features, format!("{home}/.cache/lab/f.pt"));
    let e = load_text("[eval]\nfeatures = \"/abs/~/f.pt\"\n", &[]).unwrap();
    assert_eq!(e.eval.features, "/abs/~/f.pt");
}
