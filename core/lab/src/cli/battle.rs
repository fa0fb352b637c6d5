//! `lab battle RUN_A RUN_B`: the GAM battle of two trained GANs ([`crate::battle`]).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::battle::{battle, trains_a_critic, Battle, BattleOptions, JudgeMode, Verdict};
use crate::train::write_json;

#[derive(Debug, Args)]
pub struct BattleArgs {
    /// M1's run folder.
    pub first: PathBuf,
    /// M2's run folder.
    pub second: PathBuf,
    /// Which checkpoint of each: `last` or `best`.
    #[arg(long, default_value = "last")]
    pub checkpoint: String,
    /// Samples per generator; also the most test images judged.
    #[arg(long, default_value_t = 10_000)]
    pub n: i64,
    /// Seed of the latents, labels and dropout; the same seed gives the same figures.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A winner is declared only when |r_test − 1| is at most this.
    #[arg(long, default_value_t = 0.1)]
    pub tolerance: f64,
    /// The discriminator's output above which it calls an image real: 0 for logits (the BCE
    /// and hinge losses), 0.5 for the least-squares loss's 0/1 targets.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub boundary: f64,
    /// `train`: batch statistics and dropout, as the discriminator was trained; `eval`: running
    /// statistics.
    #[arg(long, value_enum, default_value = "train")]
    pub mode: JudgeMode,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: BattleArgs) -> anyhow::Result<ExitCode> {
    let opts = BattleOptions {
        runs: [args.first.clone(), args.second.clone()],
        checkpoint: args.checkpoint.clone(),
        n: args.n,
        seed: args.seed,
        tolerance: args.tolerance,
        boundary: args.boundary,
        mode: args.mode,
        progress: !args.quiet,
    };
    let result = battle(&opts)?;
    print!("{}", render(&result));
    if let Some(out) = &args.out {
        write_json(out, &result)?;
        println!("(figures in {})", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The battle as a short table and its verdict.
pub fn render(b: &Battle) -> String {
    let [m1, m2] = &b.models;
    let mut s = format!(
        "GAM battle (Im et al. 2016) on {}: {} test images, {} samples per generator, seed {}, discriminators in {} mode\n",
        b.dataset,
        b.test_images,
        b.samples,
        b.seed,
        b.mode.describe()
    );
    for (tag, m) in [("M1", m1), ("M2", m2)] {
        s += &format!(
            "  {tag}: {} ({} / {}, {} checkpoint at step {})\n",
            m.run, m.architecture, m.loss, b.checkpoint, m.step
        );
    }
    s += &format!("  {:<44}{:>10}{:>10}\n", "", "D1", "D2");
    s +=
        &format!("  {:<44}{:>10.4}{:>10.4}\n", "error on test images (called generated)", m1.test_error, m2.test_error);
    s += &format!(
        "  {:<44}{:>10.4}{:>10.4}\n",
        "error on the other's samples (called real)", m1.sample_error, m2.sample_error
    );
    s += &format!("r_test   = {:.4}  (D1's error on test images / D2's)\n", b.r_test);
    s += &format!("r_sample = {:.4}  (D1's error on G2's samples / D2's error on G1's)\n", b.r_sample);
    let favours = if b.r_sample < 1.0 {
        format!("M1 ({})", m1.experiment)
    } else if b.r_sample > 1.0 {
        format!("M2 ({})", m2.experiment)
    } else {
        "neither".to_string()
    };
    s += &match b.verdict {
        Verdict::FirstWins => {
            format!("winner: M1 ({}): its samples fool D2 more often than G2's fool D1\n", m1.experiment)
        }
        Verdict::SecondWins => {
            format!("winner: M2 ({}): its samples fool D1 more often than G1's fool D2\n", m2.experiment)
        }
        Verdict::Tie => "tie: r_sample = 1\n".to_string(),
        Verdict::NoDecision => format!(
            "no winner: r_test is not within 1 ± {} (the discriminators judge real images differently, and the paper \
             declares a winner only when r_test ≈ 1); r_sample alone favours {favours}\n",
            b.tolerance
        ),
    };
    for m in [m1, m2] {
        if trains_a_critic(&m.loss) {
            s += &format!(
                "note: {} trained a critic (loss `{}`), whose scores have no decision boundary: its errors count scores on the wrong side of --boundary {}\n",
                m.run, m.loss, b.boundary
            );
        }
    }
    s
}
