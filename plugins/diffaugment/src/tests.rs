//! Tests of `diffaugment`: each operation's parameter distribution measured over large batches,
//! exact kernel behaviour, gradients against finite differences, determinism and per-sample
//! independence. The plugin is created through its descriptor's factory, as the core does.
use lab_augment_ops::{random, Step};
use lab_plugin_api::augment::{descriptor, Augment as Handle};
use lab_plugin_api::library::{into_result, Factory};
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{AugmentPlugin, BuildEnv, DataSpec};

use crate::{cutout, rng_lock, translate, DiffAugment, DiffAugmentConfig};

/// Samples per statistical test: enough for ±2 % on a frequency, small enough for 2 cores.
const N: i64 = 4096;

fn env() -> BuildEnv {
    BuildEnv::from_device(Device::Cpu, DataSpec { channels: 3, height: 32, width: 32, num_classes: 0 })
}

/// Creates the plugin exactly as the core does: config text → descriptor's factory → handle.
fn plugin(config: &str) -> lab_plugin_api::Result<Handle> {
    let Factory::Augmentation(create) = descriptor::<DiffAugment>("0").factory else { panic!("not an augmentation") };
    let obj = into_result(create(config.into(), env()))?;
    // SAFETY: the factory comes from this very crate, linked in, so it outlives the handle.
    Ok(unsafe { Handle::from_raw(obj) })
}

fn steps(policy: &str) -> Vec<Step> {
    let config = DiffAugmentConfig { policy: policy.into(), ..Default::default() };
    DiffAugment::create(config, env()).unwrap().steps().to_vec()
}

/// Applies one step of the default policy to `x` under `seed`.
fn apply_step(name: &str, x: &Tensor, seed: u64) -> Tensor {
    let step = steps("color,translation,cutout").into_iter().find(|s| s.op.name() == name).unwrap();
    random::seed(seed);
    step.op.sample_apply(x).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Pearson correlation of two equally long series.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Checks a U(low, high) sample: bounds respected, both ends approached, mean and standard
/// deviation those of the uniform distribution.
fn assert_uniform(what: &str, v: &[f64], low: f64, high: f64) {
    let (lo, hi) = min_max(v);
    let m = mean(v);
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    let width = high - low;
    eprintln!("{what}: n = {}, min {lo:.4}, max {hi:.4}, mean {m:.4}, sd {sd:.4}", v.len());
    assert!(lo >= low && hi <= high, "{what}: [{lo}, {hi}] leaves [{low}, {high}]");
    assert!(lo < low + 0.01 * width && hi > high - 0.01 * width, "{what}: [{lo}, {hi}] misses the ends");
    // The mean of 4096 uniforms has sd width/√12/64 ≈ 0.0045·width: allow 4.5 of those.
    assert!((m - (low + high) / 2.0).abs() < 0.02 * width, "{what}: mean {m}");
    assert!((sd - width / 12f64.sqrt()).abs() < 0.02 * width, "{what}: sd {sd}");
}

// ---- config -------------------------------------------------------------------------------

#[test]
fn default_policy_is_color_translation_cutout_with_the_papers_parameters() {
    let names: Vec<&str> = steps("color,translation,cutout").iter().map(|s| s.op.name()).collect();
    assert_eq!(names, ["brightness", "saturation", "contrast", "translate", "cutout"]);
    assert!(steps("color,translation,cutout").iter().all(|s| s.p == 1.0), "every step applies to every sample");
    assert_eq!(DiffAugmentConfig::default().steps().unwrap(), steps("color,translation,cutout"));
    // The order is the user's, as in the reference code; spaces around names are ignored.
    let names: Vec<&str> = steps(" cutout , translation").iter().map(|s| s.op.name()).collect();
    assert_eq!(names, ["cutout", "translate"]);
    assert!(plugin("").is_ok());
    let text = lab_plugin_api::config::default_toml::<DiffAugmentConfig>();
    assert_eq!(text, "policy = \"color,translation,cutout\"\ntranslation_ratio = 0.125\ncutout_ratio = 0.5\n");
}

#[test]
fn unknown_policy_ops_are_refused_with_a_suggestion() {
    assert_eq!(
        plugin(r#"policy = "colour,translation""#).err().unwrap(),
        "key `policy`: unknown op `colour` in \"colour,translation\"; did you mean `color`? \
         valid ops: color, translation, cutout"
    );
    assert_eq!(
        plugin(r#"policy = "color,,cutout""#).err().unwrap(),
        "key `policy`: empty op at position 2 in \"color,,cutout\"; valid ops: color, translation, cutout"
    );
    assert_eq!(
        plugin("cutout_ratio = 1.5").err().unwrap(),
        "key `cutout_ratio`: expected a number in [0, 1], found 1.5"
    );
    assert_eq!(
        plugin("polcy = \"color\"").err().unwrap(),
        "key `polcy`: not a key of this plugin; did you mean `policy`? valid keys: cutout_ratio, policy, translation_ratio"
    );
}

#[test]
fn empty_policy_is_the_identity() {
    let _rng = rng_lock();
    let mut handle = plugin(r#"policy = """#).unwrap();
    let x = Tensor::rand([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    assert!(handle.apply(&x, 1).unwrap().equal(&x));
}

// ---- parameter distributions --------------------------------------------------------------

#[test]
fn brightness_shift_is_uniform_in_plus_minus_half() {
    let _rng = rng_lock();
    // On black images the output is the shift itself.
    let y = apply_step("brightness", &Tensor::zeros([N, 3, 2, 2], (Kind::Float, Device::Cpu)), 1);
    let shifts = values(&y.select(1, 0).select(1, 0).select(1, 0));
    assert_uniform("brightness shift", &shifts, -0.5, 0.5);
    // One shift per sample, shared by every pixel and channel.
    assert!(y.eq_tensor(&y.narrow(1, 0, 1).narrow(2, 0, 1).narrow(3, 0, 1)).all().int64_value(&[]) == 1);
}

#[test]
fn saturation_factor_is_uniform_in_0_2() {
    let _rng = rng_lock();
    // Pixel channels (1, −1, 0) have mean 0, so the first channel comes out as the factor.
    let x = Tensor::from_slice(&[1.0f32, -1.0, 0.0]).view([1, 3, 1, 1]).repeat([N, 1, 1, 1]);
    let y = apply_step("saturation", &x, 2);
    assert_uniform("saturation factor", &values(&y.select(1, 0)), 0.0, 2.0);
}

#[test]
fn contrast_factor_is_uniform_in_half_to_one_and_a_half() {
    let _rng = rng_lock();
    // An image of mean 0 whose first pixel is 1 comes out with the factor there.
    let x = Tensor::from_slice(&[1.0f32, -1.0]).view([1, 1, 1, 2]).repeat([N, 1, 1, 1]);
    let y = apply_step("contrast", &x, 3);
    assert_uniform("contrast factor", &values(&y.select(3, 0)), 0.5, 1.5);
}

/// Each sample's shift (dx, dy) under `seed`, read off a single bright pixel at the centre of
/// a black 32×32 image.
fn translation_shifts(seed: u64) -> (Vec<i64>, Vec<i64>) {
    let x = Tensor::zeros([N, 1, 32, 32], (Kind::Float, Device::Cpu));
    let _ = x.narrow(2, 16, 1).narrow(3, 16, 1).fill_(1.0);
    let y = apply_step("translate", &x, seed);
    assert!(y.sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float).eq(1.0).all().int64_value(&[]) == 1);
    let at = y.flatten(1, -1).argmax(1, false);
    let dy = Vec::<i64>::try_from(at.divide_scalar_mode(32, "floor") - 16).unwrap();
    let dx = Vec::<i64>::try_from(at.remainder(32) - 16).unwrap();
    (dx, dy)
}

#[test]
fn translation_covers_exactly_minus_4_to_4_uniformly_at_32px() {
    let _rng = rng_lock();
    let (dx, dy) = translation_shifts(4);
    for (axis, shifts) in [("x", &dx), ("y", &dy)] {
        let mut counts = [0usize; 9];
        for &s in shifts.iter() {
            assert!((-4..=4).contains(&s), "shift {s} outside ±4");
            counts[(s + 4) as usize] += 1;
        }
        eprintln!("translation {axis}: counts of −4..=4 = {counts:?} (expected {} each)", N / 9);
        // Each of the 9 values has probability 1/9: 455 expected, sd ≈ 20.
        assert!(counts.iter().all(|&c| (375..=535).contains(&c)), "{axis}: {counts:?}");
    }
    let as_f = |v: &[i64]| v.iter().map(|&s| s as f64).collect::<Vec<_>>();
    let r = correlation(&as_f(&dx), &as_f(&dy));
    eprintln!("translation: corr(dx, dy) = {r:.4}");
    assert!(r.abs() < 0.06, "rows and columns are drawn independently: r = {r}");
}

#[test]
fn cutout_is_a_16px_square_at_32px_clipped_at_the_border() {
    let _rng = rng_lock();
    let y = apply_step("cutout", &Tensor::ones([N, 1, 32, 32], (Kind::Float, Device::Cpu)), 5);
    let zero = y.select(1, 0).eq(0.0); // [N, 32, 32]
    let rows = zero.any_dim(2, false); // [N, 32]: rows with a zeroed pixel
    let cols = zero.any_dim(1, false);
    let count = |m: &Tensor| Vec::<i64>::try_from(m.sum_dim_intlist(&[1i64][..], false, Kind::Int64)).unwrap();
    let (heights, widths) = (count(&rows), count(&cols));
    let zeros = Vec::<i64>::try_from(zero.sum_dim_intlist(&[1i64, 2][..], false, Kind::Int64)).unwrap();
    let first = |m: &Tensor| Vec::<i64>::try_from(m.to_kind(Kind::Int64).argmax(1, false)).unwrap();
    let (top, left) = (first(&rows), first(&cols));
    let mut full = 0;
    for i in 0..N as usize {
        let (h, w) = (heights[i], widths[i]);
        assert_eq!(zeros[i], h * w, "sample {i}: the zeroed pixels form one rectangle");
        // The centre c is uniform in 0..=32 and the square spans c − 8 ..= c + 7: at least 8
        // rows stay inside, and a clipped side touches the border.
        assert!((8..=16).contains(&h) && (8..=16).contains(&w), "sample {i}: {h}×{w}");
        assert!(h == 16 || top[i] == 0 || top[i] + h == 32, "sample {i}: clipped but not at the border");
        assert!(w == 16 || left[i] == 0 || left[i] + w == 32, "sample {i}: clipped but not at the border");
        full += usize::from(h == 16 && w == 16);
    }
    assert_eq!(heights.iter().max(), Some(&16));
    assert_eq!(heights.iter().min(), Some(&8), "centres on the edge leave half the square");
    // Unclipped on both axes: centre in 8..=24 on each, (17/33)² ≈ 0.265.
    let rate = full as f64 / N as f64;
    eprintln!("cutout: unclipped 16×16 in {rate:.3} of samples (expected 0.265)");
    assert!((rate - (17.0f64 / 33.0).powi(2)).abs() < 0.03);
}

// ---- exact behaviour ----------------------------------------------------------------------

#[test]
fn translation_by_a_known_shift_moves_pixels_and_fills_zeros() {
    // A ramp 1..=16 on a 4×4 image, moved right by 1 and up by 2.
    let x = Tensor::arange_start(1, 17, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
    let y = translate(&x, &Tensor::from_slice(&[1i64]), &Tensor::from_slice(&[-2i64]));
    #[rustfmt::skip]
    let expected = [
        0.0, 9.0, 10.0, 11.0,
        0.0, 13.0, 14.0, 15.0,
        0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(values(&y), expected);
}

#[test]
fn cutout_with_a_known_centre_has_the_right_size_and_is_clipped() {
    let x = Tensor::ones([3, 1, 32, 32], (Kind::Float, Device::Cpu));
    // Centres (x, y): middle, top-left corner, right edge.
    let y = cutout(&x, &Tensor::from_slice(&[16i64, 0, 32]), &Tensor::from_slice(&[16i64, 3, 20]), 16, 16);
    let zeroed = |i: i64| y.get(i).get(0).eq(0.0);
    let rect = |i: i64, r0: i64, r1: i64, c0: i64, c1: i64| {
        let z = zeroed(i);
        assert_eq!(z.sum(Kind::Int64).int64_value(&[]), (r1 - r0) * (c1 - c0), "sample {i}: area");
        assert!(z.narrow(0, r0, r1 - r0).narrow(1, c0, c1 - c0).all().int64_value(&[]) == 1, "sample {i}");
    };
    rect(0, 8, 24, 8, 24); // rows and columns c − 8 .. c + 8
    rect(1, 0, 11, 0, 8); // rows −5..11 and columns −8..8, clipped
    rect(2, 12, 28, 24, 32); // columns 24..40, clipped
}

// ---- gradients, determinism, independence -------------------------------------------------

#[test]
fn gradient_is_nonzero_and_matches_finite_differences() {
    let _rng = rng_lock();
    let mut handle = plugin("").unwrap();
    lab_plugin_api::tch::manual_seed(0);
    let shape = [2i64, 3, 8, 8];
    let x = Tensor::rand(shape, (Kind::Double, Device::Cpu)) * 2.0 - 1.0;
    let w = Tensor::rand(shape, (Kind::Double, Device::Cpu));
    // The same seed for every evaluation fixes every random parameter.
    let mut f = |x: &Tensor| (handle.apply(x, 17).unwrap() * &w).sum(Kind::Double);
    let xg = x.copy().set_requires_grad(true);
    f(&xg).backward();
    let grad = xg.grad();
    let nonzero = grad.ne(0.0).sum(Kind::Int64).int64_value(&[]);
    assert!(nonzero > 0, "the gradient reaches the input");
    let eps = 1e-6;
    let flat = x.flatten(0, -1);
    let mut worst: f64 = 0.0;
    for i in (0..flat.size()[0]).step_by(5) {
        let mut at = |d: f64| {
            let xb = flat.copy();
            let _ = xb.get(i).fill_(flat.double_value(&[i]) + d);
            f(&xb.view(shape)).double_value(&[])
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        worst = worst.max((numeric - grad.flatten(0, -1).double_value(&[i])).abs());
    }
    eprintln!(
        "gradient: {nonzero} of {} entries non-zero; max |autograd − central difference| = {worst:.2e}",
        flat.size()[0]
    );
    assert!(worst < 1e-7, "max error {worst}");
}

#[test]
fn same_seed_same_output_different_seed_different_output() {
    let _rng = rng_lock();
    let mut handle = plugin("").unwrap();
    let x = Tensor::rand([8, 3, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let a = handle.apply(&x, 1234).unwrap();
    let _ = Tensor::rand([3], (Kind::Float, Device::Cpu)); // move the global generator on
    assert!(a.equal(&handle.apply(&x, 1234).unwrap()));
    for other in [1235, 1234 ^ (1 << 40)] {
        assert!(!a.equal(&handle.apply(&x, other).unwrap()), "seed {other}");
    }
}

#[test]
fn samples_get_independent_parameters() {
    let _rng = rng_lock();
    // Brightness: neighbours in the batch are uncorrelated, and no two samples share a shift.
    let y = apply_step("brightness", &Tensor::zeros([N, 1, 1, 1], (Kind::Float, Device::Cpu)), 6);
    let shifts = values(&y);
    let r = correlation(&shifts[..N as usize - 1], &shifts[1..]);
    let mut sorted = shifts.clone();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    eprintln!("brightness: corr(sample i, i + 1) = {r:.4}; {} distinct shifts of {N}", sorted.len());
    assert!(r.abs() < 0.06);
    assert!(sorted.len() as f64 > 0.99 * N as f64);
    // Translation: the same for integer shifts.
    let (dx, _) = translation_shifts(7);
    let dx: Vec<f64> = dx.iter().map(|&s| s as f64).collect();
    let r = correlation(&dx[..N as usize - 1], &dx[1..]);
    eprintln!("translation: corr(dx of sample i, i + 1) = {r:.4}");
    assert!(r.abs() < 0.06);
}

#[test]
fn every_op_is_applied_to_every_sample() {
    let _rng = rng_lock();
    // The full default policy changes every sample of a random batch.
    let x = Tensor::rand([64, 3, 8, 8], (Kind::Float, Device::Cpu));
    let y = plugin("").unwrap().apply(&x, 3).unwrap();
    let unchanged = y.eq_tensor(&x).flatten(1, -1).all_dim(1, false).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(unchanged, 0);
}
