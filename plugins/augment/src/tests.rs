//! Unit tests of the kernels, the pipeline and the plugin. Plugins are created through the
//! descriptor's factory and driven through the host-side handle, as the core does.
use std::f64::consts::PI;

use lab_plugin_api::augment::{descriptor, Augment as Handle};
use lab_plugin_api::library::{into_result, Factory};
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{BuildEnv, DataSpec};

use crate::ops::{affine, color, erase, pixel, random, Op, Padding, Pipeline};
use crate::{rng_lock, Augment, AugmentConfig};

fn data(height: i64, width: i64) -> DataSpec {
    DataSpec { channels: 3, height, width, num_classes: 0 }
}

/// Creates the plugin exactly as the core does: config text → descriptor's factory → handle.
fn plugin(config: &str, data: DataSpec) -> lab_plugin_api::Result<Handle> {
    let Factory::Augmentation(create) = descriptor::<Augment>("0").factory else { panic!("not an augmentation") };
    let obj = into_result(create(config.into(), BuildEnv::from_device(Device::Cpu, data)))?;
    // SAFETY: the factory comes from this very crate, linked in, so it outlives the handle.
    Ok(unsafe { Handle::from_raw(obj) })
}

/// The pipeline of an `[augment.config]` text, parsed as the plugin parses it.
fn pipeline(config: &str) -> Pipeline {
    let config: AugmentConfig = lab_plugin_api::config::parse(config).expect("valid config");
    config.pipeline().expect("valid pipeline")
}

fn config_error(config: &str) -> String {
    match lab_plugin_api::config::parse::<AugmentConfig>(config) {
        Err(e) => e.to_string(),
        Ok(c) => c.pipeline().expect_err("an invalid pipeline").to_string(),
    }
}

/// Seeded images in [-1, 1].
fn images(shape: [i64; 4], seed: i64, kind: Kind) -> Tensor {
    lab_plugin_api::tch::manual_seed(seed);
    (Tensor::rand(shape, (Kind::Float, Device::Cpu)) * 2.0 - 1.0).to_kind(kind)
}

fn run(p: &Pipeline, x: &Tensor, seed: u64) -> Tensor {
    random::seed(seed);
    p.apply(x, 1.0).expect("applies")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// `[N]`: whether each sample of `a` equals the same sample of `b` exactly.
fn same_per_sample(a: &Tensor, b: &Tensor) -> Tensor {
    a.eq_tensor(b).flatten(1, -1).all_dim(1, false)
}

fn fraction(mask: &Tensor) -> f64 {
    mask.to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

// ---- config -------------------------------------------------------------------------------

#[test]
fn default_config_is_hflip_and_translate_and_round_trips() {
    let text = lab_plugin_api::config::default_toml::<AugmentConfig>();
    let parsed: AugmentConfig = lab_plugin_api::config::parse(&text).unwrap();
    assert_eq!(parsed, AugmentConfig::default(), "the documented defaults parse back:\n{text}");
    let names: Vec<&str> = parsed.pipeline().unwrap().steps().iter().map(|s| s.op.name()).collect();
    assert_eq!(names, ["hflip", "translate"]);
    assert!(plugin("", data(32, 32)).is_ok());
}

#[test]
fn entries_take_defaults_and_bare_names() {
    let p = pipeline(r#"pipeline = [{ op = "rotate", p = 0.3, degrees = 10 }, "cutout", { op = "scale", max = 1.5 }]"#);
    let steps = p.steps();
    assert_eq!(steps[0].op, Op::Rotate { degrees: 10.0, padding: Padding::Zeros });
    assert_eq!(steps[0].p, 0.3);
    assert_eq!(steps[1].op, Op::Cutout { ratio: 0.5 });
    assert_eq!(steps[1].p, 1.0, "p defaults to 1");
    assert_eq!(steps[2].op, Op::Scale { min: 0.8, max: 1.5, padding: Padding::Zeros });
    // Writing the steps out and parsing them again gives the same pipeline.
    let again = Pipeline::from_toml("pipeline", &p.to_toml()).unwrap();
    assert_eq!(again, p);
    assert!(pipeline("pipeline = []").steps().is_empty(), "an empty pipeline is allowed");
}

#[test]
fn config_errors_name_the_entry_and_key() {
    assert_eq!(
        config_error(r#"pipeline = [{ op = "hflip" }, { op = "rotat" }]"#),
        "`pipeline[1].op`: unknown op `rotat`; did you mean `rotate`? valid ops: hflip, rotate90, translate, \
         subpixel_translate, rotate, scale, aniso, crop, brightness, saturation, contrast, noise, cutout"
    );
    assert_eq!(
        config_error(r#"pipeline = [{ op = "rotate", degree = 10 }]"#),
        "`pipeline[0].degree`: op `rotate` has no parameter `degree`; did you mean `degrees`? \
         valid keys: op, degrees, p, padding"
    );
    assert_eq!(
        config_error(r#"pipeline = [{ op = "hflip", p = 1.5 }]"#),
        "`pipeline[0].p`: expected a number in [0, 1], found 1.5"
    );
    assert_eq!(
        config_error(r#"pipeline = [{ op = "rotate", degrees = "lots" }]"#),
        "`pipeline[0].degrees`: expected a finite number, found \"lots\""
    );
    assert_eq!(
        config_error(r#"pipeline = [{ op = "scale", min = 1.5, max = 1.2 }]"#),
        "`pipeline[0]`: `min` (1.5) must not exceed `max` (1.2)"
    );
    assert_eq!(
        config_error(r#"pipeline = [{ op = "crop", scale = [0.5, 2.0] }]"#),
        "`pipeline[0].scale`: expected a pair [low, high] with 0 < low <= high <= 1, found [0.5, 2.0]"
    );
    assert_eq!(
        config_error(r#"pipeline = [{ op = "rotate", padding = "reflect" }]"#),
        "`pipeline[0].padding`: unknown padding `reflect`; did you mean `reflection`? valid: zeros, border, reflection"
    );
    assert_eq!(
        config_error(r#"pipeline = [{ p = 0.5 }]"#),
        "`pipeline[0]`: missing `op`; valid ops: hflip, rotate90, translate, subpixel_translate, rotate, scale, \
         aniso, crop, brightness, saturation, contrast, noise, cutout"
    );
    assert!(config_error("pipeline = [3]").starts_with("`pipeline[0]`: expected a table such as"));
    let err = plugin(r#"pipeline = ["rotate90"]"#, data(28, 32)).err().unwrap();
    assert_eq!(err, "`pipeline[0]`: `rotate90` needs square images, but the data is 28×32 (H×W); remove that entry");
}

// ---- kernels ------------------------------------------------------------------------------

#[test]
fn hflip_is_exact() {
    let _rng = rng_lock();
    let x = images([4, 3, 5, 7], 0, Kind::Float);
    let y = run(&pipeline(r#"pipeline = [{ op = "hflip", p = 1 }]"#), &x, 1);
    assert!(y.equal(&x.flip([3])));
    assert_eq!(y.double_value(&[2, 1, 3, 0]), x.double_value(&[2, 1, 3, 6]));
}

#[test]
fn quarter_turns_match_transposes_and_flips() {
    let _rng = rng_lock();
    let x = images([4, 2, 6, 6], 0, Kind::Float);
    let k = Tensor::from_slice(&[0i64, 1, 2, 3]);
    let turned = pixel::rotate90(&x, &k).unwrap();
    let expect = |i: i64, t: Tensor| assert!(turned.get(i).equal(&t), "sample {i}");
    expect(0, x.get(0));
    // A counter-clockwise quarter turn: transpose, then flip upside down.
    expect(1, x.get(1).transpose(1, 2).flip([1]));
    expect(2, x.get(2).flip([1, 2]));
    expect(3, x.get(3).transpose(1, 2).flip([2]));
    assert!(pixel::rotate90(&images([1, 1, 4, 5], 0, Kind::Float), &k.narrow(0, 0, 1)).is_err());
}

#[test]
fn rotation_warp_by_90_degrees_matches_a_quarter_turn() {
    let _rng = rng_lock();
    let x = images([2, 3, 8, 8], 0, Kind::Float);
    let angle = Tensor::from_slice(&[PI as f32 / 2.0, -PI as f32 / 2.0]);
    let warped = affine::warp(&x, &affine::rotation(&angle, 8, 8), Padding::Zeros);
    let k = Tensor::from_slice(&[1i64, 3]);
    let diff = max_abs_diff(&warped, &pixel::rotate90(&x, &k).unwrap());
    assert!(diff < 1e-5, "rotating by ±90° resamples pixel centres onto pixel centres; max diff {diff}");
    // On a non-square image a half turn is still a rotation: both axes reversed.
    let x = images([1, 1, 4, 6], 1, Kind::Float);
    let half = affine::warp(&x, &affine::rotation(&Tensor::from_slice(&[PI as f32]), 4, 6), Padding::Zeros);
    assert!(max_abs_diff(&half, &x.flip([2, 3])) < 1e-5);
}

#[test]
fn integer_translation_moves_pixels_exactly() {
    let _rng = rng_lock();
    let x = images([2, 1, 5, 6], 0, Kind::Float);
    let (dx, dy) = (Tensor::from_slice(&[2i64, -1]), Tensor::from_slice(&[-3i64, 0]));
    let y = pixel::translate(&x, &dx, &dy, Padding::Zeros);
    for (i, (dx, dy)) in [(2i64, -3i64), (-1, 0)].into_iter().enumerate() {
        for r in 0..5i64 {
            for c in 0..6i64 {
                let (sr, sc) = (r - dy, c - dx);
                let inside = (0..5).contains(&sr) && (0..6).contains(&sc);
                let expected = if inside { x.double_value(&[i as i64, 0, sr, sc]) } else { 0.0 };
                assert_eq!(y.double_value(&[i as i64, 0, r, c]), expected, "sample {i} at ({r}, {c})");
            }
        }
    }
    // Other paddings: the edge repeated, or mirrored about the edge.
    let row = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([1, 1, 1, 4]);
    let shift = |p| pixel::translate(&row, &Tensor::from_slice(&[2i64]), &Tensor::from_slice(&[0i64]), p);
    let values = |t: Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    assert_eq!(values(shift(Padding::Zeros)), [0.0, 0.0, 1.0, 2.0]);
    assert_eq!(values(shift(Padding::Border)), [1.0, 1.0, 1.0, 2.0]);
    assert_eq!(values(shift(Padding::Reflection)), [2.0, 1.0, 1.0, 2.0]);
}

#[test]
fn subpixel_translation_by_whole_pixels_matches_the_exact_one() {
    let _rng = rng_lock();
    let x = images([2, 3, 6, 8], 0, Kind::Float);
    let (dx, dy) = ([3i64, -2], [1i64, 0]);
    let to_f = |v: [i64; 2]| Tensor::from_slice(&[v[0] as f32, v[1] as f32]);
    let warped = affine::warp(&x, &affine::translation(&to_f(dx), &to_f(dy), 6, 8), Padding::Zeros);
    let exact = pixel::translate(&x, &Tensor::from_slice(&dx), &Tensor::from_slice(&dy), Padding::Zeros);
    assert!(max_abs_diff(&warped, &exact) < 1e-5);
}

#[test]
fn cutout_zeroes_a_clipped_square() {
    let x = Tensor::ones([3, 1, 8, 8], (Kind::Float, Device::Cpu));
    // Centres (column, row): inside, at the top-left corner, at the bottom-right edge.
    let cx = Tensor::from_slice(&[4i64, 0, 8]);
    let cy = Tensor::from_slice(&[3i64, 0, 8]);
    let y = erase::cutout(&x, &cx, &cy, 4, 4);
    let zeroed = |i: i64| y.get(i).get(0).eq(0.0);
    // Rows and columns c − 2 .. c + 2 (exclusive), clipped to the image.
    let expect = |i: i64, rows: std::ops::Range<i64>, cols: std::ops::Range<i64>| {
        let m = Tensor::zeros([8, 8], (Kind::Bool, Device::Cpu));
        let _ = m.narrow(0, rows.start, rows.end - rows.start).narrow(1, cols.start, cols.end - cols.start).fill_(1);
        assert!(zeroed(i).equal(&m), "sample {i}: {:?}", zeroed(i));
    };
    expect(0, 1..5, 2..6);
    expect(1, 0..2, 0..2);
    expect(2, 6..8, 6..8);
    assert_eq!(erase::side(32, 0.5), 16);
}

#[test]
fn colour_kernels_follow_their_formulas() {
    let x = Tensor::from_slice(&[0.5f64, -0.5, 0.0, 0.25]).view([1, 2, 1, 2]);
    let one = |v: f64| Tensor::from_slice(&[v]);
    let values = |t: Tensor| Vec::<f64>::try_from(t.flatten(0, -1)).unwrap();
    assert_eq!(values(color::brightness(&x, &one(0.25))), [0.75, -0.25, 0.25, 0.5]);
    // Channel means per pixel: 0.25 and -0.125; saturation 0 leaves only them.
    assert_eq!(values(color::saturation(&x, &one(0.0))), [0.25, -0.125, 0.25, -0.125]);
    // The image mean is 0.0625; contrast 2 doubles every deviation from it.
    assert_eq!(values(color::contrast(&x, &one(2.0))), [0.9375, -1.0625, -0.0625, 0.4375]);
}

// ---- the pipeline -------------------------------------------------------------------------

const EVERY_OP: &str = r#"pipeline = [
    { op = "hflip", p = 0.5 }, { op = "rotate90", p = 0.5 }, "translate", "subpixel_translate",
    { op = "rotate", degrees = 30 }, "scale", { op = "aniso", padding = "reflection" }, "crop",
    "brightness", "saturation", "contrast", "noise", "cutout",
]"#;

#[test]
fn every_op_at_p_0_is_the_identity() {
    let _rng = rng_lock();
    let x = images([6, 3, 8, 8], 0, Kind::Float);
    for name in Op::NAMES {
        let y = run(&pipeline(&format!(r#"pipeline = [{{ op = "{name}", p = 0 }}]"#)), &x, 7);
        assert!(y.equal(&x), "`{name}` with p = 0 changed the batch");
    }
}

#[test]
fn every_op_at_p_1_changes_the_batch_and_passes_gradients() {
    let _rng = rng_lock();
    for name in Op::NAMES {
        let x = images([6, 3, 8, 8], 0, Kind::Float).set_requires_grad(true);
        let y = run(&pipeline(&format!(r#"pipeline = [{{ op = "{name}", p = 1 }}]"#)), &x, 7);
        assert_eq!(y.size(), x.size());
        assert!(!y.equal(&x), "`{name}` with p = 1 left the batch unchanged");
        let w = images([6, 3, 8, 8], 1, Kind::Float);
        (&y * w).sum(Kind::Float).backward();
        let grad = x.grad();
        assert!(grad.isfinite().all().int64_value(&[]) == 1, "`{name}`: finite gradient");
        assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0, "`{name}`: the gradient reaches x");
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let _rng = rng_lock();
    let p = pipeline(EVERY_OP);
    let x = images([2, 3, 6, 6], 0, Kind::Double);
    let w = images([2, 3, 6, 6], 1, Kind::Double);
    // The same seed every time fixes every random parameter, so f is a fixed function of x.
    let f = |x: &Tensor| (run(&p, x, 11) * &w).sum(Kind::Double);
    let xg = x.copy().set_requires_grad(true);
    f(&xg).backward();
    let grad = xg.grad();
    assert!(grad.abs().max().double_value(&[]) > 0.0);
    let eps = 1e-6;
    let flat = x.flatten(0, -1);
    let mut worst: f64 = 0.0;
    for i in (0..flat.size()[0]).step_by(7) {
        let bump = |d: f64| {
            let xb = flat.copy();
            let _ = xb.get(i).fill_(flat.double_value(&[i]) + d);
            f(&xb.view([2, 3, 6, 6])).double_value(&[])
        };
        let numeric = (bump(eps) - bump(-eps)) / (2.0 * eps);
        worst = worst.max((numeric - grad.flatten(0, -1).double_value(&[i])).abs());
    }
    assert!(worst < 1e-6, "autograd vs central differences: max error {worst}");
}

#[test]
fn same_seed_same_output_different_seed_different_output() {
    let _rng = rng_lock();
    let p = pipeline(EVERY_OP);
    let x = images([8, 3, 8, 8], 0, Kind::Float);
    let a = run(&p, &x, 42);
    let _ = images([1, 1, 1, 1], 99, Kind::Float); // disturb the global generator in between
    assert!(a.equal(&run(&p, &x, 42)));
    assert!(!a.equal(&run(&p, &x, 43)));
    // Through the plugin handle as the core calls it.
    let mut handle = plugin(EVERY_OP, data(8, 8)).unwrap();
    assert!(handle.apply(&x, 42).unwrap().equal(&a));
}

#[test]
fn probability_is_respected_per_sample() {
    let _rng = rng_lock();
    let n = 4000;
    let x = images([n, 1, 4, 4], 0, Kind::Float);
    let flipped = |y: &Tensor| same_per_sample(y, &x.flip([3]));
    let y = run(&pipeline(r#"pipeline = [{ op = "hflip", p = 0.3 }]"#), &x, 1);
    let rate = fraction(&flipped(&y));
    assert!((rate - 0.3).abs() < 0.025, "hflip p = 0.3 flipped {rate:.3} of the samples");
    assert!(same_per_sample(&y, &x).logical_or(&flipped(&y)).all().int64_value(&[]) == 1);
    // Two warps at p = 0.5 in one run: a sample is resampled if it drew either (3/4); the rest
    // stay bit for bit.
    let y = run(&pipeline(r#"pipeline = [{ op = "rotate", p = 0.5 }, { op = "scale", p = 0.5 }]"#), &x, 2);
    let rate = fraction(&same_per_sample(&y, &x));
    assert!((rate - 0.25).abs() < 0.025, "{rate:.3} of the samples skipped both warps; expected 0.25");
    // A global strength scales every probability (ADA's p).
    random::seed(3);
    let y = pipeline(r#"pipeline = [{ op = "brightness", p = 0.5 }]"#).apply(&x, 0.5).unwrap();
    let rate = fraction(&same_per_sample(&y, &x).logical_not());
    assert!((rate - 0.25).abs() < 0.025, "strength 0.5 × p 0.5 changed {rate:.3}");
}

#[test]
fn crops_stay_inside_the_image() {
    let _rng = rng_lock();
    // With zero padding, any read outside the image would darken a constant image.
    let x = Tensor::ones([500, 1, 8, 12], (Kind::Float, Device::Cpu));
    let y = run(&pipeline(r#"pipeline = [{ op = "crop", scale = [0.1, 1.0], ratio = [0.5, 2.0] }]"#), &x, 5);
    assert!(max_abs_diff(&y, &x) < 1e-5);
}

#[test]
fn translate_draws_cover_the_whole_range() {
    let _rng = rng_lock();
    // A single bright pixel in the middle of a 32×32 image shows each sample's shift.
    let n = 2000;
    let x = Tensor::zeros([n, 1, 32, 32], (Kind::Float, Device::Cpu));
    let _ = x.narrow(2, 16, 1).narrow(3, 16, 1).fill_(1.0);
    let y = run(&pipeline(r#"pipeline = ["translate"]"#), &x, 9);
    let at = y.flatten(1, -1).argmax(1, false);
    let (dy, dx) = (at.divide_scalar_mode(32, "floor") - 16, at.remainder(32) - 16);
    for d in [dx, dy] {
        assert_eq!((d.min().int64_value(&[]), d.max().int64_value(&[])), (-4, 4));
    }
}

#[test]
fn runs_on_cuda_when_present() {
    use lab_plugin_api::tch::Cuda;
    if !Cuda::is_available() {
        eprintln!("runs_on_cuda_when_present: skipped, no CUDA device visible to this test binary");
        return;
    }
    let _rng = rng_lock();
    let p = pipeline(EVERY_OP);
    let x = images([16, 3, 16, 16], 0, Kind::Float).to_device(Device::Cuda(0)).set_requires_grad(true);
    let y = run(&p, &x, 3);
    assert_eq!((y.device(), y.size()), (x.device(), x.size()));
    assert!(y.equal(&run(&p, &x, 3)), "deterministic on the GPU too");
    y.sum(Kind::Float).backward();
    assert!(x.grad().isfinite().all().int64_value(&[]) == 1);
}
