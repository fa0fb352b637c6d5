//! `lab report SPEC`: a paper-style table (Markdown, LaTeX, CSV) and plots from run folders.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report spec, e.g. `reports/diffaugment_cifar10.toml` (format: reports/README.md).
    pub spec: PathBuf,
    /// Where the tables and plots go: `<out>/<spec name>.{md,tex,csv}`.
    #[arg(long, default_value = "reports/out")]
    pub out: PathBuf,
    /// Print the Markdown table to stdout as well.
    #[arg(long)]
    pub print: bool,
}

/// Builds the report; globs and the reference path are relative to the working directory.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let base = std::env::current_dir()?;
    let generated = crate::report::generate(&args.spec, &base, &args.out)?;
    if args.print {
        println!("{}", crate::report::render_markdown(&generated.table));
    }
    let counted: usize = generated.table.cells.iter().flatten().map(|c| c.runs.len()).sum();
    println!(
        "{}: {} run(s) in {} row(s) × {} column(s)",
        args.spec.display(),
        counted,
        generated.table.rows.len(),
        generated.table.columns.len()
    );
    for f in &generated.files {
        println!("  wrote {}", f.display());
    }
    for n in &generated.table.notes {
        println!("  note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}
