//! Sweep planning: names, expansion order, resolved configs, and the skip/resume decision.
use std::path::{Path, PathBuf};

use super::*;

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/quickstart.toml")
}

fn request(tmp: &Path) -> Request {
    Request {
        file: quickstart(),
        grid: vec![
            GridAxis::parse("augment.name=none,diffaugment").unwrap(),
            GridAxis::parse("data.fraction=0.1,0.02").unwrap(),
        ],
        seeds: vec![0, 1],
        set: vec!["train.steps=4".into()],
        runs_dir: tmp.join("runs"),
        sweep_dir: Some(tmp.join("sweep")),
    }
}

#[test]
fn members_have_readable_names_and_resolved_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(&request(tmp.path())).unwrap();
    let names: Vec<&str> = plan.members.iter().map(|m| m.full_name.as_str()).collect();
    insta::assert_snapshot!("member_names", names.join("\n"));
    assert!(plan.actions.iter().all(|a| *a == Action::Start));

    let m = &plan.members[5];
    assert_eq!(m.experiment.augment.name, "diffaugment");
    assert_eq!(m.experiment.data.fraction, 0.1);
    assert_eq!(m.experiment.seed, 1);
    assert_eq!(m.experiment.train.steps, 4, "--set applies to every member");
    assert_eq!(m.experiment.name, "quickstart__augment.name=diffaugment__data.fraction=0.1__seed=1");
    assert_eq!(
        m.group(&plan.runs_dir),
        tmp.path().join("runs/quickstart__augment.name=diffaugment__data.fraction=0.1__seed=1")
    );

    plan.write(&request(tmp.path())).unwrap();
    let text = std::fs::read_to_string(&m.config_path).unwrap();
    let text = text.replace(&quickstart().display().to_string(), "experiments/quickstart.toml");
    insta::assert_snapshot!("member_config", text);
    // The written config is a complete experiment that loads on its own.
    let again = crate::config::Experiment::load(&crate::config::Sources {
        file: Some(m.config_path.clone()),
        env: false,
        set: vec![],
    })
    .unwrap();
    assert_eq!(again, m.experiment);
    assert!(tmp.path().join("sweep/sweep.json").is_file());
}

#[test]
fn sanitised_names_keep_keys_readable() {
    assert_eq!(member_name(&[("optim.betas".into(), "[0.0, 0.99]".into())]), "optim.betas=_0.0__0.99_");
    assert_eq!(
        member_name(&[("augment.config.policy".into(), "\"color,cutout\"".into())]),
        "augment.config.policy=color_cutout"
    );
    assert_eq!(member_name(&[]), "default");
}

#[test]
fn finished_runs_are_skipped_interrupted_ones_resumed_changed_ones_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let req = Request {
        grid: vec![GridAxis::parse("augment.name=none,diffaugment").unwrap()],
        seeds: vec![],
        ..request(tmp.path())
    };
    let plan = super::plan(&req).unwrap();
    let write_run = |m: &Member, stamp: &str, status: Option<&str>, checkpoint: bool, config: &str| {
        let dir = m.group(&req.runs_dir).join(stamp);
        std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
        std::fs::write(dir.join("config.toml"), config).unwrap();
        if let Some(s) = status {
            std::fs::write(dir.join("summary.json"), format!("{{\n  \"status\": \"{s}\"\n}}\n")).unwrap();
        }
        if checkpoint {
            std::fs::write(dir.join("checkpoints/last.safetensors"), b"").unwrap();
        }
        dir
    };
    // The run's config.toml holds more than the member's (plugin defaults): that is fine.
    let with_defaults = |m: &Member| format!("{}\n[model.config.extra]\nz = 1\n", m.experiment.to_toml());
    let finished = write_run(
        &plan.members[0],
        "20260101-000000-s0-aaaa",
        Some("finished"),
        true,
        &with_defaults(&plan.members[0]),
    );
    let _older =
        write_run(&plan.members[1], "20260101-000000-s0-bbbb", Some("failed"), false, &with_defaults(&plan.members[1]));
    let killed =
        write_run(&plan.members[1], "20260101-000001-s0-cccc", Some("killed"), true, &with_defaults(&plan.members[1]));
    let plan = super::plan(&req).unwrap();
    assert_eq!(plan.actions, vec![Action::Skip { run: finished }, Action::Resume { run: killed.clone() }]);
    let jobs = plan.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].args, vec!["run".into(), "--resume".into(), killed.into_os_string()]);

    // Sweeping again with another --set must not mistake the old runs for the new members.
    let changed = Request { set: vec!["train.steps=8".into()], ..req.clone() };
    let err = super::plan(&changed).unwrap_err().to_string().replace(&tmp.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!("changed_config_error", err);
}

#[test]
fn slurm_script_runs_config_i_in_task_i() {
    let tasks = vec![
        Task { full_name: "exp__a=1".into(), config: "/w/sweeps/exp/a=1.toml".into() },
        Task { full_name: "exp__a=it's".into(), config: "/w/sweeps/exp/a=it_s.toml".into() },
    ];
    let opts = SlurmOptions {
        partition: Some("gpu".into()),
        time: Some("1-00:00:00".into()),
        gpus_per_task: Some(1),
        max_running: Some(4),
    };
    let text = slurm_script(
        "exp",
        &tasks,
        Path::new("/w/target/release/lab"),
        Path::new("/w"),
        Path::new("/w/runs"),
        Path::new("/w/sweeps/exp/logs"),
        &opts,
    );
    insta::assert_snapshot!("slurm_script", text);
    assert_eq!(job_id("Submitted batch job 1234"), Some(1234));
}
