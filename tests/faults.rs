//! Faults a user or a machine throws at `lab`, each with its exact message and the state of the
//! run folder afterwards: sizes that cannot be allocated, a disk that fills up during a
//! checkpoint write, damaged checkpoints, and `kill -9` at random moments followed by a resume.
//! (Junk plugin libraries are in `plugin_failures.rs`; a batch larger than the data in
//! `config_errors.rs`; a truncated `last` checkpoint in `reproducibility.rs`.)
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lab_tests::*;

/// `lab run` of the quickstart with the tiny settings, `steps` steps, and `extra` overrides.
fn quickstart(runs: &Path, steps: u64, extra: &[&str]) -> Command {
    let mut cmd = lab();
    cmd.args(["run", "experiments/quickstart.toml", "--quiet", "--runs-dir"]).arg(runs);
    cmd.args(tiny(steps));
    for s in extra {
        cmd.args(["--set", s]);
    }
    cmd
}

/// The run folders under `runs` (any experiment).
fn run_folders(runs: &Path) -> Vec<PathBuf> {
    let Ok(experiments) = std::fs::read_dir(runs) else { return Vec::new() };
    let mut out: Vec<PathBuf> = experiments
        .flatten()
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Files in `dir`, by name, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// The metrics rows as (step, key), to find duplicates.
fn rows(run: &Path) -> Vec<(u64, String)> {
    metrics(run).into_iter().map(|(step, key, _)| (step, key)).collect()
}

#[test]
fn a_sample_grid_that_cannot_be_allocated_is_a_config_error_and_no_run_folder_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let out = run(&mut quickstart(&runs, 2, &["log.samples=100000000000"]));
    assert!(!out.status.success());
    insta::assert_snapshot!(stderr(&out), @"error: experiments/quickstart.toml: key `log.samples`: the sample grid's 100000000000 latents does not fit in memory: libtorch could not allocate 40.0 TB; lower `log.samples`");
    assert_eq!(run_folders(&runs), Vec::<PathBuf>::new(), "nothing was started");
}

/// A tmpfs of `kib` KiB mounted at `dir`, unmounted on drop. `None` where mounting is not
/// allowed (not root, or a container without the capability).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, kib: u64) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A 4-step run with its checkpoint at step 4: the folder, `last`, and `last`'s bytes.
fn trained_to_a_step_4_checkpoint(runs: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let out = run(&mut quickstart(runs, 4, &["checkpoint.every=4"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = run_folders(runs).pop().unwrap();
    let last = folder.join("checkpoints/last.safetensors");
    let bytes = std::fs::read(&last).unwrap();
    (folder, last, bytes)
}

/// After a checkpoint write that failed: no temporary file, and `last` byte for byte as before.
fn assert_last_survived_the_failed_write(folder: &Path, last: &Path, before: &[u8]) {
    assert_eq!(names(&folder.join("checkpoints")), ["last.safetensors", "previous.safetensors"], "no .tmp left");
    assert_eq!(std::fs::read(last).unwrap(), before, "last is the step-4 checkpoint, untouched");
}

#[test]
fn a_disk_that_fills_up_during_a_checkpoint_write_leaves_no_temporary_file_and_last_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().join("disk");
    let Some(_disk) = SmallDisk::mount(&mount, 8 * 1024) else {
        println!("skipped: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)");
        return;
    };
    let runs = mount.join("runs");
    let (folder, last, step_4) = trained_to_a_step_4_checkpoint(&runs);
    let size = step_4.len() as u64;
    // Fill the disk so that everything but another checkpoint still fits.
    let free = fs_free_bytes(&mount);
    std::fs::write(mount.join("filler"), vec![0u8; (free - size / 2) as usize]).unwrap();
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&folder).args(["--set", "train.steps=8"]));
    assert!(!out.status.success());
    let text = stderr(&out).replace(&folder.display().to_string(), "[RUN]");
    insta::assert_snapshot!(text);
    assert_last_survived_the_failed_write(&folder, &last, &step_4);
    // Space freed, the run resumes from step 4 and finishes.
    std::fs::remove_file(mount.join("filler")).unwrap();
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&folder).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let reference = run(&mut quickstart(&tmp.path().join("reference"), 8, &["checkpoint.every=4"]));
    assert!(reference.status.success());
    let reference = run_folders(&tmp.path().join("reference")).pop().unwrap();
    assert_eq!(deterministic_metrics(&folder), deterministic_metrics(&reference));
}

#[test]
fn a_write_error_during_a_checkpoint_write_leaves_no_temporary_file_and_last_intact_without_root() {
    // The same fault where no tmpfs can be mounted: a file-size limit (RLIMIT_FSIZE, with SIGXFSZ
    // ignored) makes the kernel refuse the checkpoint's writes past half its size (EFBIG), while
    // the small files around it still fit.
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let (folder, last, step_4) = trained_to_a_step_4_checkpoint(&runs);
    let limit_kib = step_4.len() / 2 / 1024;
    let mut limited = Command::new("bash");
    lab_environment(&mut limited);
    limited
        .args(["-c", "trap '' XFSZ; ulimit -f \"$0\"; exec \"$@\""])
        .arg(limit_kib.to_string())
        .arg(lab_bin())
        .args(["run", "--quiet", "--resume"])
        .arg(&folder)
        .args(["--set", "train.steps=8"]);
    let out = run(&mut limited);
    assert!(!out.status.success());
    let text = stderr(&out).replace(&folder.display().to_string(), "[RUN]");
    assert!(
        text.starts_with(
            "error: run [RUN]: [RUN]/checkpoints/last.safetensors: cannot write checkpoint: File too large"
        ),
        "{text}"
    );
    assert!(text.trim_end().ends_with("; the checkpoint already there is unchanged"), "{text}");
    assert_last_survived_the_failed_write(&folder, &last, &step_4);
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&folder).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Free bytes on the file system holding `dir` (`df` in 1-KiB blocks).
fn fs_free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df").args(["-k", "--output=avail"]).arg(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1).unwrap().trim().parse::<u64>().unwrap() * 1024
}

#[test]
fn a_flipped_bit_in_the_last_checkpoint_is_caught_and_the_previous_one_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let out = run(&mut quickstart(&runs, 8, &["checkpoint.every=4"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = run_folders(&runs).pop().unwrap();
    let last = folder.join("checkpoints/last.safetensors");
    let mut bytes = std::fs::read(&last).unwrap();
    // A bit in the tensor data (the end of the file), which safetensors itself never checks.
    let n = bytes.len();
    bytes[n - 3] ^= 0x10;
    std::fs::write(&last, &bytes).unwrap();
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&folder).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out).replace(&folder.display().to_string(), "[RUN]");
    // The checksums depend on the weights, which depend on the CPU's kernels: redact them,
    // punctuation around them kept.
    let text: String = text
        .split_whitespace()
        .map(|w| {
            let hash = w.trim_matches(|c: char| !c.is_ascii_hexdigit());
            if hash.len() >= 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
                w.replace(hash, "[SHA256]")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    insta::assert_snapshot!(text);
}

/// A small deterministic generator (SplitMix64) for the kill moments: the test must repeat.
struct Moments(u64);

impl Moments {
    fn next_below(&mut self, max: Duration) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        max.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// The last step in a run folder's `metrics.jsonl` (rows may be torn; those are skipped).
fn logged_step(runs: &Path) -> Option<u64> {
    let folder = run_folders(runs).pop()?;
    let text = std::fs::read_to_string(folder.join("metrics.jsonl")).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .max()
}

/// A finished run that is resumed for more steps is running again: its old summary (status
/// `finished`, the old final values) is gone from the moment training restarts, so a report or a
/// sweep made meanwhile does not count it as done, and a run killed during the resume is left
/// without one, like any run that never ended.
#[test]
fn a_resumed_run_drops_its_old_summary_while_it_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let out = run(&mut quickstart(&runs, 4, &["checkpoint.every=2", "log.every=1"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = run_folders(&runs).pop().unwrap();
    let summary = folder.join("summary.json");
    assert!(std::fs::read_to_string(&summary).unwrap().contains("\"finished\""));
    let mut child = lab()
        .args(["run", "--quiet", "--resume"])
        .arg(&folder)
        .args(["--set", "train.steps=100000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while logged_step(&runs).is_none_or(|s| s <= 5) {
        assert!(child.try_wait().unwrap().is_none(), "the resumed run stopped early");
        assert!(started.elapsed() < Duration::from_secs(120), "the resumed run logged nothing past step 5");
        std::thread::sleep(Duration::from_millis(5));
    }
    let present = summary.exists();
    let _ = child.kill();
    let _ = child.wait();
    assert!(!present, "the finished run's summary.json is still there while it trains again");
    assert!(!summary.exists(), "a run killed during its resume has no summary");
}

#[test]
fn kill_9_at_twenty_moments_then_resume_gives_the_uninterrupted_metrics_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    // Checkpoints every 2 steps, so that many kills land in (or near) a checkpoint write.
    let settings = ["checkpoint.every=2", "log.every=1"];
    let steps = 12;
    let reference_runs = tmp.path().join("reference");
    let out = run(&mut quickstart(&reference_runs, steps, &settings));
    assert!(out.status.success(), "{}", stderr(&out));
    let reference = run_folders(&reference_runs).pop().unwrap();
    let expected = deterministic_metrics(&reference);
    let mut outcomes = Vec::new();
    // Twenty kills: four during start-up (a random moment in the first 1.5 s), the others once
    // the run has logged step k (k = 0, 1, ..., 12 in turn) plus a random delay under 0.2 s, so
    // that they land inside steps, logging and checkpoint writes alike.
    let mut random = Moments(19);
    for i in 0..20 {
        let runs = tmp.path().join(format!("killed-{i}"));
        let mut child = quickstart(&runs, steps, &settings)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let spawned = Instant::now();
        let moment = if i < 4 {
            std::thread::sleep(random.next_below(Duration::from_millis(1500)));
            format!("{:.2?} after start", spawned.elapsed())
        } else {
            let k = (i as u64 - 4) % (steps + 1);
            while logged_step(&runs).is_none_or(|s| s < k) && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(random.next_below(Duration::from_millis(200)));
            format!("{:.2?} after start, step {k} logged", spawned.elapsed())
        };
        // SIGKILL: nothing of lab's own runs after this.
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        let mut restarted = "";
        let folder = match run_folders(&runs).pop() {
            // Killed before the run folder was complete: there is nothing to resume; start again.
            Some(f) if f.join("config.toml").is_file() => f,
            _ => {
                let _ = std::fs::remove_dir_all(&runs);
                let out = run(&mut quickstart(&runs, steps, &settings));
                assert!(out.status.success(), "{}", stderr(&out));
                restarted = " (before its run folder existed: started again)";
                run_folders(&runs).pop().unwrap()
            }
        };
        let done_before = metrics(&folder).iter().map(|r| r.0).max().unwrap_or(0);
        let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&folder));
        assert!(out.status.success(), "kill {i} ({moment}): {}", stderr(&out));
        let got = deterministic_metrics(&folder);
        assert_eq!(got, expected, "kill {i} ({moment}; logged up to step {done_before})");
        let mut seen = rows(&folder);
        let total = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), total, "kill {i}: duplicate rows in metrics.jsonl");
        assert!(
            !names(&folder.join("checkpoints")).iter().any(|n| n.ends_with(".tmp")),
            "kill {i}: a temporary checkpoint file is left"
        );
        outcomes.push(format!(
            "{moment}: killed with step {done_before} logged{restarted}{}; resumed to identical metrics",
            if finished_first { " (had already finished)" } else { "" }
        ));
    }
    println!("kill -9 outcomes:\n{}", outcomes.join("\n"));
    let during =
        outcomes.iter().filter(|o| !o.contains("had already finished") && !o.contains("started again")).count();
    assert!(during >= 12, "most kills must land while the run is alive: {during} of 20");
}
