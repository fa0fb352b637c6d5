//! The reproducibility contract on CPU: same config and seed give byte-identical metrics, and a
//! resumed run continues exactly as the uninterrupted one.
use lab_tests::train_quickstart as train;
use lab_tests::*;

#[test]
fn same_seed_same_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let a = train(&tmp.path().join("a"), 6, &[]);
    let b = train(&tmp.path().join("b"), 6, &[]);
    let (ma, mb) = (deterministic_metrics(&a), deterministic_metrics(&b));
    assert!(ma.iter().any(|m| m.1 == "loss/d") && ma.iter().any(|m| m.1 == "loss/g"));
    assert_eq!(ma, mb, "two runs with the same seed differ");
    // Bit-exact means the raw text too, not just parsed floats.
    let text = |r: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(r.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"perf/"))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {}", v["step"], v["key"], v["value"])
            })
            .collect()
    };
    assert_eq!(text(&a), text(&b));
    let c = train(&tmp.path().join("c"), 6, &["seed=1"]);
    assert_ne!(deterministic_metrics(&c), ma, "a different seed must change the run");
}

#[test]
fn the_fused_optimizer_trains_exactly_as_the_per_tensor_loop() {
    // Fused (the default) against `optim.fused = false`: the same losses and the same weights,
    // bit for bit, with momentum, weight decay and D steps in the mix.
    let tmp = tempfile::tempdir().unwrap();
    let common = ["train.d_steps=2", "optim.weight_decay=0.001"];
    let fused = train(&tmp.path().join("fused"), 6, &common);
    let single = train(&tmp.path().join("single"), 6, &[&common[..], &["optim.fused=false"]].concat());
    assert_eq!(deterministic_metrics(&fused), deterministic_metrics(&single));
    assert_eq!(checkpoint_tensors_sha256(&fused), checkpoint_tensors_sha256(&single), "the fused run's weights differ");
}

#[test]
fn resume_continues_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let full = train(&tmp.path().join("full"), 8, &["checkpoint.every=4", "data.hflip=true", "train.d_steps=2"]);
    let part = train(&tmp.path().join("part"), 4, &["checkpoint.every=4", "data.hflip=true", "train.d_steps=2"]);
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let after = |r: &std::path::Path| -> Vec<(u64, String, f64)> {
        deterministic_metrics(r).into_iter().filter(|m| m.0 > 4).collect()
    };
    let expected = after(&full);
    assert!(!expected.is_empty());
    assert_eq!(after(&part), expected, "resumed run diverged from the uninterrupted one");
    assert_eq!(deterministic_metrics(&part), deterministic_metrics(&full));
}

#[test]
fn a_checkpoint_written_before_version_2_resumes_exactly() {
    // Version 1 checkpoints had the same tensors but no `format` and no `batches` (the data
    // position, then always step × d_steps): take both out, resume, compare.
    let tmp = tempfile::tempdir().unwrap();
    let set = ["checkpoint.every=4", "train.d_steps=2"];
    let full = train(&tmp.path().join("full"), 8, &set);
    let part = train(&tmp.path().join("part"), 4, &set);
    let path = part.join("checkpoints/last.safetensors");
    let mut c = lab::train::Checkpoint::load(&path).unwrap();
    assert_eq!(c.metadata.remove("format").as_deref(), Some("2"));
    assert_eq!(c.metadata.remove("batches").as_deref(), Some("8"));
    c.save(&path).unwrap();
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(deterministic_metrics(&part), deterministic_metrics(&full));
}

#[test]
fn a_damaged_last_checkpoint_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let full = train(&tmp.path().join("full"), 8, &["checkpoint.every=4"]);
    let part = train(&tmp.path().join("part"), 8, &["checkpoint.every=4"]);
    let (last, previous) = (part.join("checkpoints/last.safetensors"), part.join("checkpoints/previous.safetensors"));
    assert!(previous.is_file(), "the checkpoint at step 4 is kept");
    // Truncated, as by a crash or a full disk after the write.
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 3]).unwrap();
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = stderr(&out);
    assert!(
        warning.starts_with(&format!("warning: cannot read checkpoint {}", last.display()))
            || warning.contains("resumed from"),
        "{warning}"
    );
    assert!(warning.contains(&format!("resumed from {} (step 4) instead", previous.display())), "{warning}");
    assert_eq!(deterministic_metrics(&part), deterministic_metrics(&full), "steps 5 to 8 trained again, exactly");
    // Both damaged: a clear refusal.
    for f in [&last, &previous] {
        std::fs::write(f, b"junk").unwrap();
    }
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=12"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is unreadable too"), "{}", stderr(&out));
}

/// The manifest's record of what decides CPU numerics.
fn cpu_record(run: &std::path::Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    manifest["cpu"].clone()
}

#[test]
fn portable_numerics_do_not_depend_on_the_cpu_instruction_set() {
    // Two "machines": this CPU as it is, and the same CPU with oneDNN, MKL and ATen held to
    // SSE4.1-era kernels, which is what they pick on an older CPU.
    let older: [(&str, &str); 3] =
        [("ATEN_CPU_CAPABILITY", "default"), ("ONEDNN_MAX_CPU_ISA", "SSE41"), ("MKL_CBWR", "COMPATIBLE")];
    let tmp = tempfile::tempdir().unwrap();
    let train_on = |runs: &str, older_machine: bool, mode: &str| {
        let runs = tmp.path().join(runs);
        let mut cmd = lab();
        cmd.args(["run", "experiments/quickstart.toml", "--quiet", "--runs-dir"]).arg(&runs).args(tiny(8));
        cmd.args(["--set", &format!("deterministic={mode}"), "--set", "threads=1"]);
        if older_machine {
            cmd.envs(older);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", stderr(&out));
        only_run(&runs, "quickstart")
    };
    let (new, old) = (train_on("new", false, "false"), train_on("old", true, "false"));
    let isa = cpu_record(&new)["cpu_isa"].as_str().unwrap().to_string();
    assert_eq!(cpu_record(&old)["switches"]["ONEDNN_MAX_CPU_ISA"], "SSE41", "the manifest records the switches");
    if isa == "avx2" || isa == "avx512f" {
        assert_ne!(
            deterministic_metrics(&new),
            deterministic_metrics(&old),
            "on a {isa} CPU the capped libraries pick other kernels, so the emulation is real"
        );
    }
    let (new, old) = (train_on("new-portable", false, "\"portable\""), train_on("old-portable", true, "\"portable\""));
    assert_eq!(deterministic_metrics(&new), deterministic_metrics(&old));
    for run in [&new, &old] {
        let cpu = cpu_record(run);
        assert_eq!(cpu["portable"], true, "{cpu}");
        assert_eq!(cpu["threads"], 1, "{cpu}");
        assert_eq!(cpu["switches"]["ONEDNN_MAX_CPU_ISA"], "SSE41", "{cpu}");
    }
}

#[test]
fn a_resume_with_another_thread_count_warns_that_values_may_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let part = train(&tmp.path().join("part"), 4, &["threads=1"]);
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args([
        "--set",
        "train.steps=6",
        "--set",
        "threads=2",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!(stderr(&out).trim(), @r#"warning: resuming with 2 threads instead of 1; CPU results depend on these, so values from here on may differ from the original run's (set deterministic = "portable" for results that do not)"#);
}
