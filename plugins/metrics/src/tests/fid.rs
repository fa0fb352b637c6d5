//! FID: the eigh-based formula against scipy's `sqrtm`, the streaming moments, and the
//! reference-statistics files.
use lab_plugin_api::tch::{Device, Kind, Tensor};

use super::{
    assert_close, f64_cpu, feed, field, images, metric, metric_err, normal, npy, reference, scratch, tiny_config,
    value, varied_images,
};
use crate::gaussian::{frechet_distance, stats_cache_key, stats_file_name, GaussianStats, Moments, StatsKey};
use crate::rng::SplitMix64;
use crate::Fid;

/// A random well-conditioned covariance A·Aᵀ/d + 0.1·I.
fn covariance(rng: &mut SplitMix64, d: i64) -> Tensor {
    let a = normal(rng, d, d, 0.0, 1.0);
    a.mm(&a.tr()) / d as f64 + Tensor::eye(d, (Kind::Double, Device::Cpu)) * 0.1
}

fn stats(mu: Tensor, sigma: Tensor) -> GaussianStats {
    GaussianStats { mu, sigma, count: 0, features_sha256: String::new() }
}

#[test]
fn fid_of_random_statistics_matches_scipy_sqrtm() {
    for (seed, d) in [(1u64, 8i64), (2, 64), (3, 256)] {
        let mut rng = SplitMix64::new(seed);
        let a = stats(normal(&mut rng, 1, d, 0.0, 1.0).reshape([d]), covariance(&mut rng, d));
        let b = stats(normal(&mut rng, 1, d, 0.5, 1.0).reshape([d]), covariance(&mut rng, d));
        let dir = scratch(&format!("fid-stats-{d}"));
        let theirs = reference(&[
            "fid-stats",
            &npy(&dir, "mu1.npy", &a.mu),
            &npy(&dir, "s1.npy", &a.sigma),
            &npy(&dir, "mu2.npy", &b.mu),
            &npy(&dir, "s2.npy", &b.sigma),
        ]);
        let ours = frechet_distance(&a, &b).unwrap();
        assert_close(&format!("FID, random statistics, d = {d}"), ours, field(&theirs, "fid"), 1e-6);
        // The distance is symmetric, although the formula is not written symmetrically.
        assert_close(&format!("FID symmetry, d = {d}"), frechet_distance(&b, &a).unwrap(), ours, 1e-9);
    }
}

#[test]
fn streaming_moments_match_numpy_cov_on_features() {
    let mut rng = SplitMix64::new(4);
    let (real, fake) = (normal(&mut rng, 500, 32, 0.0, 1.0), normal(&mut rng, 400, 32, 0.2, 1.3));
    let mut moments = [Moments::default(), Moments::default()];
    for (m, x) in moments.iter_mut().zip([&real, &fake]) {
        for chunk in x.split(64, 0) {
            m.add(&chunk.to_kind(Kind::Float)).unwrap();
        }
    }
    let ours = frechet_distance(&moments[0].stats("").unwrap(), &moments[1].stats("").unwrap()).unwrap();
    // The reference reads the same float32 features lab accumulated.
    let dir = scratch("fid-moments");
    let (r, f) = (f64_cpu(&real.to_kind(Kind::Float)), f64_cpu(&fake.to_kind(Kind::Float)));
    let theirs = reference(&["fid", &npy(&dir, "real.npy", &r), &npy(&dir, "fake.npy", &f)]);
    assert_close("FID, streamed float32 features, d = 32", ours, field(&theirs, "fid"), 1e-6);
}

#[test]
fn identical_sets_give_zero() {
    let mut rng = SplitMix64::new(5);
    let x = normal(&mut rng, 300, 16, 1.0, 2.0);
    let mut m = Moments::default();
    m.add(&x).unwrap();
    let s = m.stats("").unwrap();
    let fid = frechet_distance(&s, &s).unwrap();
    println!("FID of a set with itself: {fid:e} (trace of Σ: {:.3})", s.sigma.trace().double_value(&[]));
    assert!(fid.abs() < 1e-9, "{fid}");

    let mut fid = metric::<Fid>(&tiny_config("")).unwrap();
    let imgs = images(&mut rng, 128, 3, 16, 0, 255);
    feed(&mut fid, &imgs, false, 64);
    feed(&mut fid, &imgs, true, 64);
    let v = value(&fid.compute().unwrap(), "fid");
    println!("FID of the same images through the tiny network: {v:e}");
    assert!(v.abs() < 1e-9, "{v}");
}

#[test]
fn statistics_files_round_trip_exactly() {
    let mut rng = SplitMix64::new(6);
    let original = GaussianStats {
        mu: normal(&mut rng, 1, 12, 0.0, 1.0).reshape([12]),
        sigma: covariance(&mut rng, 12),
        count: 10_000,
        features_sha256: "ab".repeat(32),
    };
    let path = scratch("stats-io").join("sub/ref.safetensors");
    original.save(&path).unwrap();
    let back = GaussianStats::load(&path, Device::Cpu).unwrap();
    assert!(back.mu.equal(&original.mu) && back.sigma.equal(&original.sigma));
    assert_eq!((back.count, back.features_sha256.as_str()), (10_000, original.features_sha256.as_str()));
    let err = GaussianStats::load(&path.with_file_name("missing.safetensors"), Device::Cpu).unwrap_err().to_string();
    assert!(err.starts_with("reference statistics "), "{err}");
}

#[test]
fn reference_statistics_are_written_once_then_reused() {
    let dir = scratch("fid-reference");
    let path = dir.join("stats.safetensors");
    let config = tiny_config(&format!("reference_stats = '{}'", path.display()));
    let mut rng = SplitMix64::new(7);
    let (real, fake) = (images(&mut rng, 192, 3, 16, 0, 255), images(&mut rng, 128, 3, 16, 0, 200));

    // First run: accumulates the real side, writes it at compute, keeps it across reset.
    let mut first = metric::<Fid>(&config).unwrap();
    feed(&mut first, &real, false, 64);
    feed(&mut first, &fake, true, 64);
    let v1 = value(&first.compute().unwrap(), "fid");
    assert!(path.is_file());
    let protocol: serde_json::Value = serde_json::from_str(&first.protocol().unwrap()).unwrap();
    assert_eq!(protocol["reference"]["source"], "statistics file (written from real batches)");
    assert_eq!(protocol["reference"]["count"], 192);
    first.reset().unwrap();
    feed(&mut first, &fake, true, 64);
    assert_eq!(value(&first.compute().unwrap(), "fid"), v1, "the frozen reference survives reset");

    // A later run loads the file and needs no real images; real ones are ignored, on record.
    let mut second = metric::<Fid>(&config).unwrap();
    feed(&mut second, &real.narrow(0, 0, 64), false, 64);
    feed(&mut second, &fake, true, 64);
    assert_eq!(value(&second.compute().unwrap(), "fid"), v1);
    let protocol: serde_json::Value = serde_json::from_str(&second.protocol().unwrap()).unwrap();
    assert_eq!(protocol["reference"]["source"], "statistics file (loaded)");
    assert_eq!(protocol["reference"]["real_images_ignored"], 64);

    // Statistics from another feature network are refused.
    let mut other = GaussianStats::load(&path, Device::Cpu).unwrap();
    other.features_sha256 = "0".repeat(64);
    let foreign = dir.join("foreign.safetensors");
    other.save(&foreign).unwrap();
    let err = metric_err::<Fid>(&tiny_config(&format!("reference_stats = '{}'", foreign.display())));
    assert!(
        err.starts_with(&format!(
            "reference statistics {} were computed with a feature network of SHA-256 000",
            foreign.display()
        )),
        "{err}"
    );
}

#[test]
fn fid_without_a_reference_says_what_to_do() {
    let mut fid = metric::<Fid>(&tiny_config("")).unwrap();
    let mut rng = SplitMix64::new(8);
    feed(&mut fid, &images(&mut rng, 8, 3, 16, 0, 255), true, 8);
    assert_eq!(
        fid.compute().unwrap_err().to_string(),
        "fid has no reference: feed real images (update with fake = false) or set `reference_stats` to a statistics file"
    );
}

#[test]
fn cache_keys_change_with_every_field() {
    let base = StatsKey { dataset: "cifar10", split: "test", count: 10_000, features_sha256: "abc", resize: "r" };
    let key = stats_cache_key(&base);
    assert_eq!(key.len(), 64);
    assert_eq!(key, stats_cache_key(&base));
    let variants = [
        StatsKey { dataset: "cifar100", ..base },
        StatsKey { split: "train", ..base },
        StatsKey { count: 50_000, ..base },
        StatsKey { features_sha256: "abd", ..base },
        StatsKey { resize: "s", ..base },
    ];
    for v in &variants {
        assert_ne!(stats_cache_key(v), key, "{v:?}");
    }
    let name = stats_file_name(&StatsKey { dataset: "my data/v2", ..base });
    assert_eq!(
        name,
        format!(
            "fid-stats-my_data_v2-test-10000-{}.safetensors",
            &stats_cache_key(&StatsKey { dataset: "my data/v2", ..base })[..16]
        )
    );
}

#[test]
fn singular_covariances_still_give_a_finite_distance() {
    // Fewer samples than dimensions: both covariances are rank-deficient.
    let mut rng = SplitMix64::new(9);
    let mut sides = [Moments::default(), Moments::default()];
    for (i, m) in sides.iter_mut().enumerate() {
        m.add(&normal(&mut rng, 20, 64, i as f64 * 0.1, 1.0)).unwrap();
    }
    let fid = frechet_distance(&sides[0].stats("").unwrap(), &sides[1].stats("").unwrap()).unwrap();
    assert!(fid.is_finite() && fid > 0.0, "{fid}");
}

/// `cargo test --release -p lab-plugin-metrics -- --ignored --nocapture fid_timing`: the cost of
/// FID itself (moments and the matrix square root, no network) on 10k features per side.
#[test]
#[ignore = "timing; run by hand"]
fn fid_timing() {
    for d in [64, 2048] {
        let mut rng = SplitMix64::new(10);
        let (real, fake) = (normal(&mut rng, 10_000, d, 0.0, 1.0), normal(&mut rng, 10_000, d, 0.1, 1.1));
        let (real, fake) = (real.to_kind(Kind::Float), fake.to_kind(Kind::Float));
        let start = std::time::Instant::now();
        let mut sides = [Moments::default(), Moments::default()];
        for (m, x) in sides.iter_mut().zip([&real, &fake]) {
            for chunk in x.split(100, 0) {
                m.add(&chunk).unwrap();
            }
        }
        let accumulate = start.elapsed();
        let (a, b) = (sides[0].stats("").unwrap(), sides[1].stats("").unwrap());
        let start = std::time::Instant::now();
        let fid = frechet_distance(&a, &b).unwrap();
        let distance = start.elapsed();
        println!(
            "FID, 10k vs 10k x {d}-d on CPU ({} threads): accumulate {:.3} s, distance {:.3} s; FID = {fid:.4}",
            lab_plugin_api::tch::get_num_threads(),
            accumulate.as_secs_f64(),
            distance.as_secs_f64()
        );
    }
}

#[test]
fn the_reference_hook_caches_statistics_by_reference_set_and_feature_network() {
    let dir = scratch("fid-reference-hook");
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = SplitMix64::new(11);
    let (real, fake) = (images(&mut rng, 96, 3, 16, 0, 255), images(&mut rng, 64, 3, 16, 0, 200));

    // The core says which reference set the real images are; FID caches its statistics there.
    let mut first = metric::<Fid>(&tiny_config("")).unwrap();
    first.reference("shapes-test-96", &dir).unwrap();
    feed(&mut first, &real, false, 32);
    feed(&mut first, &fake, true, 32);
    let v1 = value(&first.compute().unwrap(), "fid");
    let files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("fid-shapes-test-96-") && files[0].ends_with(".safetensors"), "{files:?}");

    // The same reference set again: loaded, no real images needed.
    let mut second = metric::<Fid>(&tiny_config("")).unwrap();
    second.reference("shapes-test-96", &dir).unwrap();
    feed(&mut second, &fake, true, 32);
    assert_eq!(value(&second.compute().unwrap(), "fid"), v1);
    let protocol: serde_json::Value = serde_json::from_str(&second.protocol().unwrap()).unwrap();
    assert_eq!(protocol["reference"]["source"], "statistics file (loaded)");

    // Another reference set gets a file of its own; a configured file wins over the hook.
    let mut third = metric::<Fid>(&tiny_config("")).unwrap();
    third.reference("shapes-train-96", &dir).unwrap();
    feed(&mut third, &real, false, 32);
    feed(&mut third, &fake, true, 32);
    third.compute().unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    let own = dir.join("own.safetensors");
    let mut fourth = metric::<Fid>(&tiny_config(&format!("reference_stats = '{}'", own.display()))).unwrap();
    fourth.reference("shapes-test-96", &dir).unwrap();
    feed(&mut fourth, &real, false, 32);
    feed(&mut fourth, &fake, true, 32);
    fourth.compute().unwrap();
    assert!(own.is_file());
}

#[test]
fn set_fid_of_float_images_equals_the_fid_plugin_on_their_pixels() {
    // What translation systems measure themselves (two sets of [-1, 1] images they hold) must be
    // the very number the `fid` plugin gives the same pixels in the same network's features.
    let mut rng = SplitMix64::new(8);
    let (real, fake) = (varied_images(&mut rng, 150, 16, 20, 200), varied_images(&mut rng, 120, 16, 60, 255));
    let mut plugin = metric::<Fid>(&tiny_config("")).unwrap();
    feed(&mut plugin, &real, false, 64);
    feed(&mut plugin, &fake, true, 64);
    let expected = value(&plugin.compute().unwrap(), "fid");

    let as_floats = |x: &Tensor| x.to_kind(Kind::Float) / 127.5 - 1.0;
    let mut set = crate::SetFid::load(&super::tiny_net().display().to_string(), Device::Cpu).unwrap();
    for chunk in as_floats(&real).split(50, 0) {
        set.add_real(&chunk).unwrap();
    }
    for chunk in as_floats(&fake).split(50, 0) {
        set.add_generated(&chunk).unwrap();
    }
    let ours = set.distance().unwrap();
    println!("FID: plugin {expected:.6}, SetFid {ours:.6}");
    assert!(expected > 1.0, "the two sets should be far apart: {expected}");
    assert_close("SetFid against the fid plugin", ours, expected, 1e-9);
    let missing = crate::SetFid::load("/nonexistent/features.pt", Device::Cpu).err().expect("no such file");
    assert_eq!(missing.key.as_deref(), Some("features"), "{missing}");
}
