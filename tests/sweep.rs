//! `lab sweep` end to end: a tiny CPU sweep that runs, is skipped when finished, resumes an
//! interrupted member (a doctored one and a real Ctrl-C), the Slurm script of `--dry-run`, and
//! a real Slurm array on a single-node cluster when `sbatch` is there.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lab_tests::*;

fn sets(list: &[&str]) -> Vec<String> {
    list.iter().flat_map(|s| ["--set".to_string(), s.to_string()]).collect()
}

/// `lab sweep experiments/quickstart.toml --grid augment.name=none,diffaugment` into `tmp`.
fn sweep_cmd(tmp: &Path, extra: &[String]) -> Command {
    let mut cmd = lab();
    cmd.args(["sweep", "experiments/quickstart.toml", "--grid", "augment.name=none,diffaugment", "--seeds", "0"])
        .arg("--runs-dir")
        .arg(tmp.join("runs"))
        .arg("--sweep-dir")
        .arg(tmp.join("sweep"))
        .args(tiny(4))
        .args(extra);
    cmd
}

fn group(tmp: &Path, member: &str) -> PathBuf {
    tmp.join("runs").join(format!("quickstart__augment.name={member}__seed=0"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn a_sweep_runs_skips_finished_members_and_resumes_interrupted_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = sets(&["checkpoint.every=2"]);
    let out = run(sweep_cmd(tmp.path(), &extra).args(["--jobs", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("[1/2] run    quickstart__augment.name=none__seed=0"), "{text}");
    assert!(text.contains("[2/2] run    quickstart__augment.name=diffaugment__seed=0"), "{text}");
    let none = only_run(&tmp.path().join("runs"), "quickstart__augment.name=none__seed=0");
    let da = only_run(&tmp.path().join("runs"), "quickstart__augment.name=diffaugment__seed=0");
    for run in [&none, &da] {
        assert_eq!(json(&run.join("summary.json"))["status"], "finished");
    }
    let config = std::fs::read_to_string(da.join("config.toml")).unwrap();
    assert!(config.contains("name = \"quickstart__augment.name=diffaugment__seed=0\""), "{config}");
    assert!(tmp.path().join("sweep/augment.name=diffaugment__seed=0.toml").is_file());
    assert!(tmp.path().join("sweep/logs/augment.name=none__seed=0.log").is_file());

    // Again: both finished, nothing runs, no new folders.
    let out = run(&mut sweep_cmd(tmp.path(), &extra));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("[1/2] skip") && text.contains("[2/2] skip"), "{text}");
    assert!(text.contains("nothing to run"), "{text}");
    assert_eq!(only_run(&tmp.path().join("runs"), "quickstart__augment.name=none__seed=0"), none);

    // A member that died after its last checkpoint (no summary) is resumed in its own folder.
    std::fs::remove_file(da.join("summary.json")).unwrap();
    let before = deterministic_metrics(&da);
    let out = run(&mut sweep_cmd(tmp.path(), &extra));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("[1/2] skip") && text.contains("[2/2] resume"), "{text}");
    assert_eq!(only_run(&tmp.path().join("runs"), "quickstart__augment.name=diffaugment__seed=0"), da);
    assert_eq!(json(&da.join("summary.json"))["status"], "finished");
    assert_eq!(json(&da.join("manifest.json"))["resumed_from_step"], 4);
    assert_eq!(deterministic_metrics(&da), before, "nothing logged twice");

    // Another --set is another experiment: the old runs are not taken for it.
    let out = run(&mut sweep_cmd(tmp.path(), &sets(&["checkpoint.every=2", "optim.lr=0.001"])));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("was run with a different config (optim.lr = 0.0002 there, 0.001 now)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ctrl_c_stops_the_sweep_with_checkpoints_and_the_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    // Long enough that the interrupt lands mid-run; checkpoints every 5 steps.
    let extra = sets(&["train.steps=200", "checkpoint.every=5", "log.every=100", "log.samples_every=0"]);
    let mut child = sweep_cmd(tmp.path(), &extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = group(tmp.path(), "none");
    let start = Instant::now();
    loop {
        let checkpoint = std::fs::read_dir(&first)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path().join("checkpoints/last.safetensors"));
        if checkpoint.is_some_and(|c| c.exists()) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint appeared in {}", first.display());
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended before its first checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    eprintln!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "the sweep reports the interrupt");
    let run_dir = only_run(&tmp.path().join("runs"), "quickstart__augment.name=none__seed=0");
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["status"], "killed");
    let stopped_at = summary["steps"].as_u64().unwrap();
    assert!(stopped_at < 200, "stopped early, at {stopped_at}");
    assert!(!group(tmp.path(), "diffaugment").exists(), "no new member starts after Ctrl-C");

    let out = run(&mut sweep_cmd(tmp.path(), &extra));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("[1/2] resume"), "{}", stdout(&out));
    assert_eq!(only_run(&tmp.path().join("runs"), "quickstart__augment.name=none__seed=0"), run_dir);
    assert_eq!(json(&run_dir.join("summary.json"))["status"], "finished");
    assert_eq!(json(&run_dir.join("manifest.json"))["resumed_from_step"], stopped_at);
    let second = only_run(&tmp.path().join("runs"), "quickstart__augment.name=diffaugment__seed=0");
    assert_eq!(json(&second.join("summary.json"))["status"], "finished");
}

#[test]
fn slurm_dry_run_writes_an_array_script() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(sweep_cmd(tmp.path(), &[]).args([
        "--slurm",
        "--dry-run",
        "--partition",
        "gpu",
        "--time",
        "04:00:00",
        "--gpus-per-task",
        "1",
        "--jobs",
        "8",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let script = std::fs::read_to_string(tmp.path().join("sweep/slurm.sbatch")).unwrap();
    let script =
        script.replace(&tmp.path().display().to_string(), "[TMP]").replace(&root().display().to_string(), "[ROOT]");
    insta::assert_snapshot!("slurm_dry_run_script", script);
    assert!(!tmp.path().join("runs").exists(), "a dry run starts nothing");
}

/// Brings up the single-node cluster of scripts/slurm-local.sh, or says why not.
fn slurm_cluster() -> Result<(), String> {
    if find("sbatch").is_none() {
        return Err("`sbatch` is not on PATH (install Slurm: scripts/slurm-local.sh install)".into());
    }
    let ping = Command::new("scontrol").arg("ping").output().map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&ping.stdout).contains("UP") {
        return Ok(());
    }
    let out = Command::new(root().join("scripts/slurm-local.sh")).arg("start").output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("scripts/slurm-local.sh start failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

#[test]
fn a_real_slurm_array_runs_the_members_and_lab_report_reads_them() {
    if let Err(why) = slurm_cluster() {
        eprintln!("SKIPPED: no Slurm cluster: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let features = tmp.path().join("tiny.pt");
    let status = Command::new(root().join(".venv/bin/python3"))
        .arg(root().join("plugins/metrics/src/tests/tiny_net.py"))
        .arg(&features)
        .status()
        .unwrap();
    assert!(status.success());
    let eval = sets(&[
        "eval.every=2",
        "eval.metrics=[\"fid\"]",
        "eval.num_samples=32",
        "eval.reference_count=32",
        "eval.batch_size=16",
        &format!("eval.features={:?}", features.display().to_string()),
    ]);
    let out = run(sweep_cmd(tmp.path(), &eval).arg("--slurm").env("LAB_CACHE", tmp.path().join("cache")));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let job = text
        .lines()
        .find_map(|l| l.strip_prefix("Submitted batch job "))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or_else(|| panic!("no job id in {text}"))
        .to_string();
    let start = Instant::now();
    loop {
        let q = Command::new("squeue").args(["-h", "-j", &job]).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "Slurm job {job} still queued or running after 10 minutes");
        std::thread::sleep(Duration::from_millis(500));
    }
    for member in ["none", "diffaugment"] {
        let dir = only_run(&tmp.path().join("runs"), &format!("quickstart__augment.name={member}__seed=0"));
        let logs: Vec<String> = std::fs::read_dir(tmp.path().join("sweep/logs"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(json(&dir.join("summary.json"))["status"], "finished", "{logs:#?}");
    }

    let spec = tmp.path().join("slurm.toml");
    std::fs::write(
        &spec,
        format!(
            "title = \"Slurm sweep\"\nruns = [{:?}]\nrows = {{ key = \"augment.name\", names = {{ none = \"DCGAN\", diffaugment = \"+ DiffAugment\" }} }}\nmetrics = [{{ name = \"fid\", format = \".3f\" }}]\n",
            tmp.path().join("runs/quickstart__*/*").display().to_string()
        ),
    )
    .unwrap();
    let out = run(lab().arg("report").arg(&spec).arg("--out").arg(tmp.path().join("out")));
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(tmp.path().join("out/slurm.md")).unwrap();
    assert!(md.contains("| DCGAN | ") && md.contains("| + DiffAugment | "), "{md}");
    assert_eq!(md.matches(" (n=1)").count(), 2, "{md}");
    assert!(md.contains("feature network `tiny.pt` (sha256 "), "{md}");
}
