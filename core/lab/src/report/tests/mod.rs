//! Report tests on fixture run folders: the Markdown, LaTeX and CSV of a DiffAugment-shaped
//! table (seeds aggregated, a missing cell, unfinished and unmatched runs, the paper's numbers
//! with deltas), the mixed-protocol error, and spec errors that name the file and key.
mod fixture;

use std::path::{Path, PathBuf};

use fixture::RunFixture;

use super::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The DiffAugment spec's layout, over `runs/*/*` of the fixture folder, with the real paper file.
fn diffaugment_spec(extra: &str) -> String {
    let reference = root().join("reports/references/diffaugment.toml");
    format!(
        r#"title = "CIFAR-10 (fixture)"
runs = ["runs/*/*"]
filters = {{ "data.dataset" = "cifar10" }}
reference = {:?}
{extra}

[rows]
title = "Method"
key = ["loss.config.cr_lambda", "augment.name"]

[rows.names]
"0, none" = "BigGAN"
"0, diffaugment" = {{ label = "+ DiffAugment", id = "BigGAN + DiffAugment" }}
"10, none" = "CR-BigGAN"
"10, diffaugment" = {{ label = "+ DiffAugment", id = "CR-BigGAN + DiffAugment" }}

[columns]
title = "Training data"
key = "data.fraction"
names = {{ "1.0" = "100%", "0.2" = "20%", "0.1" = "10%" }}

[[metrics]]
name = "is"
label = "IS"

[[metrics]]
name = "fid"
label = "FID"
"#,
        reference.display().to_string()
    )
}

/// Writes the spec into `<base>/reports/<name>.toml` and builds the table, with the spec's path
/// shown relative to `base` in messages.
fn table_for(base: &Path, name: &str, spec_text: &str) -> Result<Table, ReportError> {
    let rel = PathBuf::from(format!("reports/{name}.toml"));
    std::fs::create_dir_all(base.join("reports")).unwrap();
    std::fs::write(base.join(&rel), spec_text).unwrap();
    let spec = Spec::load(&base.join(&rel))?;
    build(&spec, &rel, base)
}

/// The DiffAugment-shaped fixture runs.
fn write_runs(runs: &Path) {
    // BigGAN, 100%: three seeds; the best FID is at step 8000 for two of them, 4000 for one.
    RunFixture::new("biggan_cifar10_100pct", 0).evals(&[(4000, 12.0, 8.5), (8000, 9.8, 8.9)]).write(runs, "a");
    RunFixture::new("biggan_cifar10_100pct", 1).evals(&[(4000, 11.0, 8.4), (8000, 10.1, 9.0)]).write(runs, "b");
    RunFixture::new("biggan_cifar10_100pct", 2).evals(&[(4000, 9.5, 9.1), (8000, 9.9, 9.3)]).write(runs, "c");
    // + DiffAugment, 100%: two seeds.
    RunFixture::new("diffaugment_cifar10_100pct", 0).augment("diffaugment").evals(&[(8000, 8.9, 9.2)]).write(runs, "d");
    RunFixture::new("diffaugment_cifar10_100pct", 1).augment("diffaugment").evals(&[(8000, 8.5, 9.1)]).write(runs, "e");
    // CR-BigGAN (cr_lambda written as an integer: it still matches "10"), 100%: one seed.
    let mut cr = RunFixture::new("cr_biggan_cifar10_100pct", 0).cr(10.0).evals(&[(8000, 9.2, 9.15)]);
    cr.write(runs, "f");
    cr.seed = 1;
    cr.status = Some("failed".into());
    cr.write(runs, "g");
    // CR + DiffAugment, 100%: one finished seed, one still running (no summary.json).
    RunFixture::new("cr_biggan_diffaugment_cifar10_100pct", 0)
        .cr(10.0)
        .augment("diffaugment")
        .evals(&[(8000, 8.4, 9.3)])
        .write(runs, "h");
    RunFixture::new("cr_biggan_diffaugment_cifar10_100pct", 1)
        .cr(10.0)
        .augment("diffaugment")
        .status(None)
        .write(runs, "i");
    // 20%: BigGAN and + DiffAugment only.
    RunFixture::new("biggan_cifar10_20pct", 0).fraction(0.2).evals(&[(8000, 22.0, 8.3)]).write(runs, "j");
    RunFixture::new("diffaugment_cifar10_20pct", 0)
        .fraction(0.2)
        .augment("diffaugment")
        .evals(&[(8000, 14.5, 8.6)])
        .write(runs, "k");
    // 10%: nothing finished.
    RunFixture::new("biggan_cifar10_10pct", 0).fraction(0.1).status(Some("killed")).write(runs, "l");
    // Not in the table: another augmentation; left out by the filter: another dataset.
    RunFixture::new("ada_cifar10_100pct", 0).augment("ada").write(runs, "m");
    let mut mnist = RunFixture::new("biggan_mnist", 0);
    mnist.dataset = "mnist".into();
    mnist.write(runs, "n");
}

#[test]
fn diffaugment_table_in_markdown_latex_and_csv() {
    let tmp = tempfile::tempdir().unwrap();
    write_runs(&tmp.path().join("runs"));
    let table = table_for(tmp.path(), "diffaugment_fixture", &diffaugment_spec("")).unwrap();

    // BigGAN @ 100%: FID at the best checkpoint of each seed, IS at that same step.
    let fid = table.cell(0, 0).values[1].stat.clone().unwrap();
    assert_eq!((fid.n, fid.seeds.clone()), (3, vec![0, 1, 2]));
    assert!((fid.mean - (9.8 + 10.1 + 9.5) / 3.0).abs() < 1e-12);
    let is = table.cell(0, 0).values[0].stat.clone().unwrap();
    assert!((is.mean - (8.9 + 9.0 + 9.1) / 3.0).abs() < 1e-12, "IS at the FID-best step");
    // Lower FID is better: CR + DiffAugment's 8.40 is the column's best.
    assert!(table.cell(3, 0).values[1].best && !table.cell(0, 0).values[1].best);
    assert_eq!(table.cell(3, 0).values[1].reference, Some(8.49));
    // Curves are averaged over seeds per step.
    assert_eq!(
        table.cell(0, 0).values[1].curve,
        vec![(4000, (12.0 + 11.0 + 9.5) / 3.0), (8000, (9.8 + 10.1 + 9.9) / 3.0)]
    );

    insta::assert_snapshot!("diffaugment_markdown", render_markdown(&table));
    insta::assert_snapshot!("diffaugment_latex", render_latex(&table));
    insta::assert_snapshot!("diffaugment_csv", render_csv(&table));
}

#[test]
fn a_column_with_two_protocols_is_an_error_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    RunFixture::new("biggan_cifar10_100pct", 0).write(&runs, "a");
    let mut other = RunFixture::new("diffaugment_cifar10_100pct", 0).augment("diffaugment");
    other.num_samples = 50_000;
    other.sha = "0".repeat(64);
    other.write(&runs, "b");
    let err = table_for(tmp.path(), "mixed", &diffaugment_spec("")).unwrap_err();
    insta::assert_snapshot!("mixed_protocols_error", err.to_string());

    // Allowed, the table states each protocol and where it applies.
    let table = table_for(tmp.path(), "mixed", &diffaugment_spec("allow_mixed_protocols = true")).unwrap();
    let md = render_markdown(&table);
    assert!(md.contains("Evaluation protocol 1 (BigGAN @ 100%): 10000 generated samples"), "{md}");
    assert!(md.contains("Evaluation protocol 2 (BigGAN + DiffAugment @ 100%): 50000 generated samples"), "{md}");
}

#[test]
fn seeds_of_one_cell_must_be_the_same_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    RunFixture::new("biggan_cifar10_100pct", 0).write(&runs, "a");
    let mut short = RunFixture::new("biggan_cifar10_100pct", 1);
    short.steps = 4;
    short.write(&runs, "b");
    let err = table_for(tmp.path(), "configs", &diffaugment_spec("")).unwrap_err();
    insta::assert_snapshot!("mixed_configs_error", err.to_string());
    // Listed in `ignore`, the difference is accepted.
    let table = table_for(tmp.path(), "configs", &diffaugment_spec("ignore = [\"train.steps\"]")).unwrap();
    assert_eq!(table.cell(0, 0).values[1].stat.as_ref().unwrap().n, 2);
}

#[test]
fn unnamed_rows_take_every_value_found_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    RunFixture::new("x", 0).fraction(0.5).evals(&[(10, 5.0, 1.0)]).write(&runs, "a");
    RunFixture::new("x", 0).fraction(0.25).evals(&[(10, 6.0, 1.0)]).write(&runs, "b");
    RunFixture::new("x", 0).fraction(1.0).evals(&[(10, 4.0, 1.0)]).write(&runs, "c");
    let spec = "title = \"t\"\nruns = [\"runs/*/*\"]\nrows = { key = \"data.fraction\" }\nmetrics = [{ name = \"fid\", value = \"final\", format = \".1f\" }]\n";
    let table = table_for(tmp.path(), "unnamed", spec).unwrap();
    let labels: Vec<&str> = table.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["0.25", "0.5", "1.0"]);
    insta::assert_snapshot!("unnamed_rows_markdown", render_markdown(&table));
}

/// In a multi-key axis a key the run's config lacks reads as `-`, so arms of different plugins
/// (ADA has no DiffAugment `policy`) share one axis; a run with none of the keys stays out.
#[test]
fn a_key_one_arm_lacks_reads_as_a_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let with = RunFixture::new("x", 0).augment("diffaugment").evals(&[(10, 5.0, 1.0)]).write(&runs, "a");
    let without = RunFixture::new("x", 0).augment("ada").evals(&[(10, 7.0, 1.0)]).write(&runs, "b");
    let config = without.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("cr_lambda = 0.0\n", "");
    std::fs::write(&config, text).unwrap();
    assert!(std::fs::read_to_string(with.join("config.toml")).unwrap().contains("cr_lambda = 0.0"));
    let spec = "title = \"t\"\nruns = [\"runs/*/*\"]\nmetrics = [{ name = \"fid\", value = \"final\", format = \".1f\" }]\n\n[rows]\nkey = [\"augment.name\", \"loss.config.cr_lambda\"]\nnames = { \"diffaugment, 0\" = \"DiffAugment\", \"ada, -\" = \"ADA\" }\n";
    let table = table_for(tmp.path(), "absent", spec).unwrap();
    let labels: Vec<&str> = table.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["DiffAugment", "ADA"]);
    assert_eq!(table.cell(1, 0).values[0].stat.as_ref().unwrap().mean, 7.0);

    // `*` matches any value, absent included.
    let spec = spec.replace("\"ada, -\"", "\"ada, *\"").replace("\"diffaugment, 0\"", "\"diffaugment, *\"");
    let table = table_for(tmp.path(), "any", &spec).unwrap();
    let means: Vec<f64> = (0..2).map(|r| table.cell(r, 0).values[0].stat.as_ref().unwrap().mean).collect();
    assert_eq!(means, [5.0, 7.0]);
}

/// A value no evaluation produced (the 2-D toys' mode coverage, logged beside each scatter) is
/// the last value the run logged under that key; the spec says which way is better.
#[test]
fn a_final_value_can_be_a_logged_scalar_with_its_direction_from_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    // Named as `lab sweep --seeds` names its members; the `experiment` key groups them in a row.
    for (experiment, seed, modes) in
        [("lsgan_ring__seed=0", 0, [3.0, 8.0]), ("lsgan_ring__seed=1", 1, [8.0, 6.0]), ("gan_ring", 0, [2.0, 5.0])]
    {
        let dir = RunFixture::new(experiment, seed).evals(&[]).write(&runs, "a");
        let lines: String = [(5000, modes[1]), (2500, modes[0])]
            .iter()
            .map(|(step, v)| format!("{{\"step\":{step},\"time\":1.0,\"key\":\"toy/modes\",\"value\":{v}}}\n"))
            .collect();
        std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    }
    let spec = "title = \"t\"\nruns = [\"runs/*/*\"]\nsparse = true\nrows = { key = \"experiment\" }\nmetrics = [\n  { name = \"toy/modes\", value = \"final\", format = \".1f\", higher_is_better = true },\n  { name = \"fid\" },\n]\n";
    let table = table_for(tmp.path(), "logged", spec).unwrap();
    let labels: Vec<&str> = table.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["gan_ring", "lsgan_ring"]);
    // The value at the last step, whatever the line order: 5 for GAN, 8 and 6 for LSGAN's seeds.
    let gan = table.cell(0, 0).values[0].stat.clone().unwrap();
    let lsgan = table.cell(1, 0).values[0].stat.clone().unwrap();
    assert_eq!((gan.mean, gan.n), (5.0, 1));
    assert_eq!((lsgan.mean, lsgan.n, lsgan.seeds.clone()), (7.0, 2, vec![0, 1]));
    assert!(table.cell(1, 0).values[0].best && !table.cell(0, 0).values[0].best);
    // Nothing was evaluated: no FID, and no best checkpoint to read a logged value at.
    assert!(table.cell(0, 0).values[1].stat.is_none());
}

#[test]
fn spec_errors_name_the_file_and_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let err = |name: &str, text: &str| {
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        Spec::load(&path).unwrap_err().to_string().replace(&tmp.path().display().to_string(), "[TMP]")
    };
    let base = "title = \"t\"\nruns = [\"runs/*/*\"]\nrows = { key = \"augment.name\" }\n";
    insta::assert_snapshot!(
        "spec_errors",
        [
            err("unknown", &format!("{base}metrics = [{{ name = \"fid\" }}]\ncolums = {{ key = \"data.fraction\" }}\n")),
            err("pick", &format!("{base}metrics = [{{ name = \"fid\", value = \"last\" }}]\n")),
            err("format", &format!("{base}metrics = [{{ name = \"fid\", format = \"%.2f\" }}]\n")),
            err("arity", "title = \"t\"\nruns = [\"r/*\"]\nmetrics = [{ name = \"fid\" }]\n[rows]\nkey = [\"a.b\", \"c\"]\nnames = { \"1\" = \"one\" }\n"),
            err("ids", "title = \"t\"\nruns = [\"r/*\"]\nmetrics = [{ name = \"fid\" }]\n[rows]\nkey = \"a\"\nnames = { x = \"+ DA\", y = \"+ DA\" }\n"),
            err("syntax", "title = \n"),
        ]
        .join("\n")
    );
}

#[test]
fn generate_writes_tables_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    write_runs(&tmp.path().join("runs"));
    std::fs::create_dir_all(tmp.path().join("reports")).unwrap();
    let spec = tmp.path().join("reports/fixture.toml");
    std::fs::write(&spec, diffaugment_spec("")).unwrap();
    let out = tmp.path().join("out");
    let generated = generate(&spec, tmp.path(), &out).unwrap();
    let names: Vec<String> =
        generated.files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names[..3], ["fixture.md", "fixture.tex", "fixture.csv"]);
    if font::ensure().is_some() {
        for f in ["fixture-fid-100pct.png", "fixture-fid-100pct.svg", "fixture-is-20pct.png", "fixture-is-20pct.svg"] {
            assert!(names.contains(&f.to_string()), "{f} missing from {names:?}");
        }
        // No curves at 10%: no figure.
        assert!(!names.iter().any(|n| n.contains("10pct")), "{names:?}");
        let png = image::open(out.join("fixture-fid-100pct.png")).unwrap();
        assert_eq!((png.width(), png.height()), (800, 500));
        let svg = std::fs::read_to_string(out.join("fixture-fid-100pct.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("CR-BigGAN + DiffAugment"), "legend names the rows");
    } else {
        eprintln!("skipped the plot checks: no TrueType font on this machine");
        assert!(generated.table.notes.iter().any(|n| n.starts_with("Plots skipped")));
    }
}

/// Best and final FID in one table share one curve: one figure, named by the metric.
#[test]
fn a_metric_shown_twice_is_plotted_once_under_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    RunFixture::new("x", 0).evals(&[(10, 5.0, 1.0), (20, 4.0, 1.0)]).write(&tmp.path().join("runs"), "a");
    std::fs::create_dir_all(tmp.path().join("reports")).unwrap();
    let spec = tmp.path().join("reports/twice.toml");
    let metrics = "[[metrics]]\nname = \"fid\"\nlabel = \"best FID\"\n\n[[metrics]]\nname = \"fid\"\nlabel = \"final FID\"\nvalue = \"final\"\n";
    std::fs::write(
        &spec,
        format!("title = \"t\"\nruns = [\"runs/*/*\"]\nrows = {{ key = \"augment.name\" }}\n{metrics}"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let generated = generate(&spec, tmp.path(), &out).unwrap();
    let plots: Vec<String> = generated
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    if font::ensure().is_some() {
        assert_eq!(plots, ["twice-fid.svg"]);
        let svg = std::fs::read_to_string(out.join("twice-fid.svg")).unwrap();
        assert!(svg.contains("fid vs step") && !svg.contains("final FID"), "captioned by the name");
    }
}

/// A solid-colour "sample grid" written where a run keeps them.
fn write_grid(run: &Path, step: u64, colour: [u8; 3]) {
    std::fs::create_dir_all(run.join("samples")).unwrap();
    image::RgbImage::from_pixel(20, 20, image::Rgb(colour))
        .save(run.join(format!("samples/step_{step:06}.png")))
        .unwrap();
}

/// `gallery = true`: one tile per row, the lowest seed's newest grid, and a grey tile saying so
/// for a row without one.
#[test]
fn the_gallery_shows_each_rows_newest_grid_of_its_lowest_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let seed0 = RunFixture::new("x", 0).write(&runs, "a");
    write_grid(&seed0, 100, [255, 0, 0]);
    write_grid(&seed0, 200, [0, 255, 0]);
    // A higher seed's newer grid is not the one shown.
    let seed1 = RunFixture::new("x", 1).write(&runs, "b");
    write_grid(&seed1, 300, [0, 0, 255]);
    RunFixture::new("y", 0).augment("diffaugment").write(&runs, "c");
    std::fs::create_dir_all(tmp.path().join("reports")).unwrap();
    let spec = tmp.path().join("reports/zoo.toml");
    std::fs::write(
        &spec,
        "title = \"t\"\nruns = [\"runs/*/*\"]\ngallery = true\nplots = false\nrows = { key = \"augment.name\" }\nmetrics = [{ name = \"fid\" }]\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let generated = generate(&spec, tmp.path(), &out).unwrap();
    if font::ensure().is_none() {
        assert!(generated.table.notes.iter().any(|n| n.starts_with("Gallery skipped")), "{:?}", generated.table.notes);
        return;
    }
    assert_eq!(generated.files.last().unwrap(), &out.join("zoo-samples.png"));
    let png = image::open(out.join("zoo-samples.png")).unwrap().to_rgb8();
    // Two tiles of 256 across with 16 between and around; a 40 px title band, 42 px of caption.
    assert_eq!(png.dimensions(), (2 * 256 + 3 * 16, 40 + 256 + 42 + 2 * 16));
    let (tile0, tile1) = ((16, 56), (16 + 256 + 16, 56));
    // Rows are sorted by value: `diffaugment` (no grid) first, then `none` (seed 0, step 200).
    assert_eq!(png.get_pixel(tile0.0 + 10, tile0.1 + 10).0, [232, 232, 232], "the empty tile is grey");
    assert_eq!(png.get_pixel(tile1.0 + 128, tile1.1 + 128).0, [0, 255, 0], "seed 0's newest grid");
    assert_eq!(png.get_pixel(tile1.0, tile1.1).0, [0, 255, 0], "scaled to fill the tile");
    // The captions are drawn under the tiles.
    let caption_ink = (tile1.0..tile1.0 + 256)
        .flat_map(|x| (tile1.1 + 256..tile1.1 + 256 + 40).map(move |y| (x, y)))
        .filter(|&(x, y)| png.get_pixel(x, y).0 != [255, 255, 255])
        .count();
    assert!(caption_ink > 50, "caption pixels: {caption_ink}");
}

#[test]
fn shipped_specs_load_and_the_paper_file_holds_the_reference_numbers() {
    let specs: Vec<PathBuf> = std::fs::read_dir(root().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert!(specs.len() >= 7, "{specs:?}");
    for spec in &specs {
        Spec::load(spec).unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
    }
    // The CIFAR zoo's targets, as each experiment file's header quotes them.
    let zoo = Reference::load(&root().join("reports/references/zoo_cifar10.toml")).unwrap();
    assert_eq!(zoo.get("sngan_resnet_cifar10", "all", "is"), Some(8.22));
    assert_eq!(zoo.get("sagan_cifar10", "all", "fid"), Some(10.35));
    assert_eq!(zoo.get("wgan_gp_resnet_cifar10", "all", "fid"), None);
    let paper = Reference::load(&root().join("reports/references/diffaugment.toml")).unwrap();
    // shared/REFERENCE.md, "CIFAR-10 results (IS / FID)": 100%, 20%, 10%.
    let expected: [(&str, [(f64, f64); 3]); 6] = [
        ("BigGAN", [(9.06, 9.59), (8.41, 21.58), (7.62, 39.78)]),
        ("BigGAN + DiffAugment", [(9.16, 8.70), (8.65, 14.04), (8.09, 22.40)]),
        ("CR-BigGAN", [(9.20, 9.06), (8.43, 20.62), (7.66, 37.45)]),
        ("CR-BigGAN + DiffAugment", [(9.17, 8.49), (8.61, 12.84), (8.49, 18.70)]),
        ("StyleGAN2", [(9.18, 11.07), (8.28, 23.08), (7.33, 36.02)]),
        ("StyleGAN2 + DiffAugment", [(9.40, 9.89), (9.21, 12.15), (8.84, 14.50)]),
    ];
    assert_eq!(paper.rows.keys().map(String::as_str).collect::<Vec<_>>(), expected.map(|e| e.0));
    for (row, values) in expected {
        for (column, (is, fid)) in ["100%", "20%", "10%"].into_iter().zip(values) {
            assert_eq!(paper.get(row, column, "is"), Some(is), "{row} {column} IS");
            assert_eq!(paper.get(row, column, "fid"), Some(fid), "{row} {column} FID");
        }
    }
    // Every row and column of the DiffAugment spec is one of the paper's.
    let spec = Spec::load(&root().join("reports/diffaugment_cifar10.toml")).unwrap();
    for name in spec.rows.names.values() {
        assert!(paper.rows.contains_key(name.id()), "{}", name.id());
    }
    for name in spec.columns.as_ref().unwrap().names.values() {
        assert!(paper.columns().contains(&name.id()), "{}", name.id());
    }
    let labels: Vec<&str> = spec.rows.names.values().map(|n| n.label()).collect();
    assert_eq!(labels, ["BigGAN", "+ DiffAugment", "CR-BigGAN", "+ DiffAugment"]);
}

/// A run written before a config key existed ran with that key's default, so it shares a cell
/// with a run written after: `optim.schedule.power` came after these two runs' first seed.
#[test]
fn a_key_added_since_a_run_was_written_reads_as_its_default() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let old = RunFixture::new("x", 0).evals(&[(10, 5.0, 1.0)]).write(&runs, "a");
    let new = RunFixture::new("x", 1).evals(&[(10, 7.0, 1.0)]).write(&runs, "b");
    for (dir, extra) in [(&old, ""), (&new, "power = 1.0\n")] {
        let config = dir.join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap() + "\n[optim.schedule]\nkind = \"linear\"\n" + extra;
        std::fs::write(&config, text).unwrap();
    }
    let spec = "title = \"t\"\nruns = [\"runs/*/*\"]\nmetrics = [{ name = \"fid\", value = \"final\", format = \".1f\" }]\n\n[rows]\nkey = \"name\"\n";
    let table = table_for(tmp.path(), "defaults", spec).unwrap();
    let stat = table.cell(0, 0).values[0].stat.as_ref().unwrap().clone();
    assert_eq!((stat.n, stat.mean), (2, 6.0));

    // A value that differs from the default still splits them, naming the key.
    let config = new.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("power = 1.0", "power = 0.75");
    std::fs::write(&config, text).unwrap();
    let error = table_for(tmp.path(), "defaults", spec).unwrap_err().to_string();
    assert!(error.contains("optim.schedule.power = 1.0 in") && error.contains("0.75 in"), "{error}");
}
