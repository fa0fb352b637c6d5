//! Configs, the exported library, and the errors users see for a bad set-up.
use std::path::Path;

use lab_plugin_api::config::{default_toml, parse};
use lab_plugin_api::tch::{Kind, Tensor};

use super::{metric, metric_err, tiny_config};
use crate::config::{FidConfig, IsConfig, KidConfig, PrConfig};
use crate::features::{default_path, missing_message, resolve_path, Source};
use crate::{Fid, InceptionScore, Kid, PrecisionRecall};

#[test]
fn the_library_exports_six_metrics() {
    let library = crate::lab_plugin_library();
    let names: Vec<String> = library.plugins.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(names, ["fid", "kid", "is", "pr", "cas", "leak"]);
}

#[test]
fn defaults_are_flat_tables_with_the_network_keys() {
    let kid = default_toml::<KidConfig>();
    for key in [
        "features = \"\"",
        "repeat_gray = true",
        "batch_size = 64",
        "feature_args = [true]",
        "subsets = 100",
        "subset_size = 1000",
        "seed = 0",
    ] {
        assert!(kid.contains(key), "`{key}` missing from\n{kid}");
    }
    assert!(default_toml::<IsConfig>().contains("probs_args = [false, false, true]"));
    assert!(default_toml::<FidConfig>().contains("reference_stats = \"\""));
    assert!(default_toml::<PrConfig>().contains("k = 3"));
}

#[test]
fn configs_parse_flattened_keys_and_refuse_unknown_ones() {
    let c: KidConfig = parse("features = 'a.pt'\nrepeat_gray = false\nsubsets = 5").unwrap();
    assert_eq!(
        (c.network.features.as_str(), c.network.repeat_gray, c.subsets, c.subset_size),
        ("a.pt", false, 5, 1000)
    );
    let err = parse::<PrConfig>("kk = 3").unwrap_err().to_string();
    assert!(err.starts_with("key `kk`: not a key of this plugin"), "{err}");
    let err = parse::<IsConfig>("splits = 'ten'").unwrap_err().to_string();
    assert_eq!(err, "key `splits`: expected an integer, found a string (default: 10)");
}

#[test]
fn a_missing_feature_file_says_where_to_get_it() {
    let err = metric_err::<Fid>("features = '/nonexistent/lab/inception-2015-12-05.pt'");
    assert_eq!(
        err,
        "feature network not found: /nonexistent/lab/inception-2015-12-05.pt (set by the metric's `features` key)\n\
         FID, KID, IS and precision/recall need a TorchScript feature network. The standard one is \
         inception-2015-12-05.pt from stylegan2-ada-pytorch (96 MB); `lab data fetch inception` downloads it to \
         the default place and checks its SHA-256 (a run also does, on first use, when the network is reachable). \
         By hand:\n  \
         mkdir -p /nonexistent/lab && curl -L -o /nonexistent/lab/inception-2015-12-05.pt \
         https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt\n\
         The .pkl of the same name on api.ngc.nvidia.com (stylegan3) is a Python pickle, not TorchScript, and \
         cannot be loaded."
    );
    // Every metric refuses the same way, before anything else happens.
    for err in [
        metric_err::<Kid>("features = '/nonexistent/x.pt'"),
        metric_err::<InceptionScore>("features = '/nonexistent/x.pt'"),
        metric_err::<PrecisionRecall>("features = '/nonexistent/x.pt'"),
    ] {
        assert!(err.starts_with("feature network not found: /nonexistent/x.pt (set by the metric's `features` key)\n"));
    }
}

#[test]
fn the_default_location_is_named_when_nothing_is_configured() {
    let path = Path::new("/home/u/.cache/lab/inception-2015-12-05.pt");
    let first = missing_message(path, &Source::Default).lines().next().unwrap().to_string();
    assert_eq!(
        first,
        "feature network not found: /home/u/.cache/lab/inception-2015-12-05.pt (the default; set the metric's \
         `features` key or $LAB_FEATURES to use another file)"
    );
    assert!(missing_message(path, &Source::Env)
        .starts_with("feature network not found: /home/u/.cache/lab/inception-2015-12-05.pt (set by $LAB_FEATURES)\n"));
    assert_eq!(resolve_path("net.pt"), ("net.pt".into(), Source::Config));
    assert!(
        default_path().ends_with(".cache/lab/inception-2015-12-05.pt") || std::env::var_os("XDG_CACHE_HOME").is_some()
    );
}

#[test]
fn a_file_that_is_not_torchscript_is_refused_readably() {
    let dir = super::scratch("not-torchscript");
    let path = dir.join("inception-2015-12-05.pkl");
    std::fs::write(&path, b"\x80\x04 a pickle").unwrap();
    let err = metric_err::<Fid>(&format!("features = '{}'", path.display()));
    assert!(err.starts_with(&format!("cannot load feature network {} as TorchScript: ", path.display())), "{err}");
    assert!(err.contains("not a pickle"), "{err}");
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(metric_err::<Kid>(&tiny_config("subsets = 0")), "key `subsets`: expected an integer >= 1, found 0");
    assert_eq!(
        metric_err::<Fid>(&tiny_config("batch_size = -1")),
        "key `batch_size`: expected an integer >= 1, found -1"
    );
    assert_eq!(metric_err::<PrecisionRecall>(&tiny_config("k = 0")), "key `k`: expected an integer >= 1, found 0");
}

#[test]
fn images_must_be_uint8_nchw() {
    let mut fid = metric::<Fid>(&tiny_config("")).unwrap();
    let err = fid
        .update(&Tensor::zeros([2, 3, 16, 16], (Kind::Float, lab_plugin_api::tch::Device::Cpu)), true)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "metrics take uint8 images (0-255); got Float");
    let err = fid
        .update(&Tensor::zeros([3, 16, 16], (Kind::Uint8, lab_plugin_api::tch::Device::Cpu)), true)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "metrics take NCHW image batches; got shape [3, 16, 16]");
}

#[test]
fn a_call_the_network_does_not_take_is_reported_with_its_arguments() {
    // The tiny network's forward takes (x, return_features) only; the Inception default for IS
    // passes three flags.
    let mut is = metric::<InceptionScore>(&tiny_config("")).unwrap();
    let err = is
        .update(&Tensor::zeros([2, 3, 16, 16], (Kind::Uint8, lab_plugin_api::tch::Device::Cpu)), true)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "feature network tiny.pt failed on a [2, 3, 16, 16] uint8 batch with arguments [false, false, true]: "
        ),
        "{err}"
    );
    assert!(err.contains("at most 3 argument(s)"), "{err}");
}
