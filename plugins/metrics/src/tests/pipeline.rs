//! The four plugins end to end: the same uint8 images go through the tiny TorchScript network in
//! lab and in the reference script, and every metric must agree with the reference computed on
//! the reference's own features.
use lab_plugin_api::tch::{Device, Tensor};
use serde_json::Value as Json;

use super::{
    assert_close, feed, field, images, metric, npy, reference, run_python, scratch, tiny_config, tiny_net, value,
    varied_images,
};
use crate::config::NetworkConfig;
use crate::features::FeatureNet;
use crate::kid::draw_subsets;
use crate::rng::SplitMix64;
use crate::{Fid, InceptionScore, Kid, PrecisionRecall};

const N_REAL: i64 = 640;
const N_FAKE: i64 = 576;

#[test]
fn all_metrics_match_the_reference_on_network_features() {
    let mut rng = SplitMix64::new(41);
    // Generated colours cover only part of the real range: the distributions overlap, but differ.
    let (real, fake) = (varied_images(&mut rng, N_REAL, 16, 0, 255), varied_images(&mut rng, N_FAKE, 16, 60, 255));
    let dir = scratch("pipeline");
    let (real_npy, fake_npy) = (npy(&dir, "real_images.npy", &real), npy(&dir, "fake_images.npy", &fake));
    let net = tiny_net().to_str().unwrap();
    let features = |images: &str, out: &str, args: &str| {
        let out = dir.join(out).to_str().unwrap().to_string();
        reference(&["features", net, images, &out, "--args", args, "--batch", "64"]);
        out
    };
    let (real_f, fake_f) = (features(&real_npy, "real.npy", "true"), features(&fake_npy, "fake.npy", "true"));
    let fake_p = features(&fake_npy, "fake_probs.npy", "false");

    // lab computes features itself; batches of 64 match the reference's chunking.
    let (fid_cfg, kid_cfg, is_cfg, pr_cfg) = (
        tiny_config(""),
        tiny_config("subsets = 10\nsubset_size = 200\nseed = 3"),
        tiny_config("probs_args = [false]\nsplits = 4"),
        tiny_config("k = 3\nrow_batch = 100"),
    );
    let mut fid = metric::<Fid>(&fid_cfg).unwrap();
    let mut kid = metric::<Kid>(&kid_cfg).unwrap();
    let mut is = metric::<InceptionScore>(&is_cfg).unwrap();
    let mut pr = metric::<PrecisionRecall>(&pr_cfg).unwrap();
    for m in [&mut fid, &mut kid, &mut is, &mut pr] {
        feed(m, &real, false, 64);
        feed(m, &fake, true, 64);
    }

    let theirs = reference(&["fid", &real_f, &fake_f]);
    assert_close(
        "FID, tiny network, 640 vs 576 images, 64-d",
        value(&fid.compute().unwrap(), "fid"),
        field(&theirs, "fid"),
        1e-6,
    );

    let (ridx, fidx) = super::kid::index_tensors(draw_subsets(3, N_REAL as usize, N_FAKE as usize, 200, 10));
    let theirs = reference(&["kid", &real_f, &fake_f, &npy(&dir, "ridx.npy", &ridx), &npy(&dir, "fidx.npy", &fidx)]);
    let ours = kid.compute().unwrap();
    assert_close("KID, tiny network", value(&ours, "kid"), field(&theirs, "kid"), 1e-6);
    assert_close("KID std, tiny network", value(&ours, "kid_std"), field(&theirs, "kid_std"), 1e-6);

    let theirs = reference(&["is", &fake_p, "--splits", "4"]);
    let ours = is.compute().unwrap();
    assert_close("IS, tiny network", value(&ours, "is"), field(&theirs, "is"), 1e-6);
    assert_close("IS std, tiny network", value(&ours, "is_std"), field(&theirs, "is_std"), 1e-6);

    let theirs = reference(&["pr", &real_f, &fake_f, "--k", "3"]);
    let ours = pr.compute().unwrap();
    println!(
        "precision {} / {}, recall {} / {}",
        value(&ours, "precision"),
        theirs["precision"],
        value(&ours, "recall"),
        theirs["recall"]
    );
    assert_eq!(value(&ours, "precision"), field(&theirs, "precision"));
    assert_eq!(value(&ours, "recall"), field(&theirs, "recall"));

    // Every value says which way is better.
    let flags: Vec<(String, bool)> = [fid.compute(), kid.compute(), is.compute(), pr.compute()]
        .into_iter()
        .flat_map(|v| v.unwrap())
        .map(|v| (v.name, v.higher_is_better))
        .collect();
    let expected = [
        ("fid", false),
        ("kid", false),
        ("kid_std", false),
        ("is", true),
        ("is_std", false),
        ("precision", true),
        ("recall", true),
    ];
    assert_eq!(flags, expected.map(|(n, b)| (n.to_string(), b)));
}

#[test]
fn lab_and_torch_compute_the_same_features() {
    let mut rng = SplitMix64::new(42);
    let imgs = images(&mut rng, 100, 3, 16, 0, 255);
    let dir = scratch("features");
    let out = dir.join("f.npy");
    reference(&[
        "features",
        tiny_net().to_str().unwrap(),
        &npy(&dir, "i.npy", &imgs),
        out.to_str().unwrap(),
        "--batch",
        "64",
    ]);
    let theirs = Tensor::read_npy(&out).unwrap();
    let config = NetworkConfig { features: tiny_net().display().to_string(), ..NetworkConfig::default() };
    let ours = FeatureNet::load(&config, Device::Cpu).unwrap().run(&imgs, &[true]).unwrap();
    assert_eq!(ours.size(), [100, 64], "the width comes from the network's output");
    let diff = (&ours - &theirs).abs().max().double_value(&[]);
    println!("features: max |lab − torch| = {diff:e}");
    assert!(diff <= 1e-6, "{diff}");
}

#[test]
fn gray_images_are_repeated_to_rgb() {
    let mut rng = SplitMix64::new(43);
    let gray = images(&mut rng, 10, 1, 16, 0, 255);
    let config = NetworkConfig { features: tiny_net().display().to_string(), ..NetworkConfig::default() };
    let net = FeatureNet::load(&config, Device::Cpu).unwrap();
    let from_gray = net.run(&gray, &[true]).unwrap();
    let from_rgb = net.run(&gray.repeat([1, 3, 1, 1]), &[true]).unwrap();
    assert!(from_gray.equal(&from_rgb));
    let off = FeatureNet::load(&NetworkConfig { repeat_gray: false, ..config }, Device::Cpu).unwrap();
    let err = off.run(&gray, &[true]).unwrap_err().to_string();
    assert!(err.contains("expected 3-channel images"), "{err}");
}

#[test]
fn protocols_record_the_network_and_the_counts() {
    let sha = run_python(
        std::path::Path::new("-c"),
        &[&format!("import hashlib; print(hashlib.sha256(open('{}', 'rb').read()).hexdigest())", tiny_net().display())],
    );
    let mut rng = SplitMix64::new(44);
    let mut kid = metric::<Kid>(&tiny_config("subset_size = 50\nseed = 9")).unwrap();
    feed(&mut kid, &images(&mut rng, 30, 3, 16, 0, 255), false, 16);
    feed(&mut kid, &images(&mut rng, 20, 3, 16, 0, 255), true, 16);
    let p: Json = serde_json::from_str(&kid.protocol().unwrap()).unwrap();
    assert_eq!(p["features"]["sha256"], sha.trim());
    assert_eq!(p["features"]["file"], "tiny.pt");
    assert_eq!(p["features"]["call"], "forward(uint8 NCHW images, true)");
    assert!(p["features"]["resize"].as_str().unwrap().contains("299x299 internally"));
    assert_eq!((p["real_count"].as_i64(), p["generated_count"].as_i64()), (Some(30), Some(20)));
    assert_eq!(
        (p["subset_size"].as_i64(), p["subset_size_requested"].as_i64(), p["seed"].as_i64()),
        (Some(20), Some(50), Some(9))
    );

    let mut is = metric::<InceptionScore>(&tiny_config("probs_args = [false]\nsplits = 2")).unwrap();
    feed(&mut is, &images(&mut rng, 8, 3, 16, 0, 255), false, 8);
    feed(&mut is, &images(&mut rng, 8, 3, 16, 0, 255), true, 8);
    let p: Json = serde_json::from_str(&is.protocol().unwrap()).unwrap();
    assert_eq!(
        (p["generated_count"].as_i64(), p["real_images_ignored"].as_i64(), p["classes"].as_i64()),
        (Some(8), Some(8), Some(10))
    );
    is.reset().unwrap();
    let p: Json = serde_json::from_str(&is.protocol().unwrap()).unwrap();
    assert_eq!(p["generated_count"].as_i64(), Some(0));
}

#[test]
fn metrics_share_one_loaded_network() {
    let config = NetworkConfig { features: tiny_net().display().to_string(), ..NetworkConfig::default() };
    let a = FeatureNet::load(&config, Device::Cpu).unwrap();
    let b = FeatureNet::load(&config, Device::Cpu).unwrap();
    assert!(a.shares_module_with(&b));
}
