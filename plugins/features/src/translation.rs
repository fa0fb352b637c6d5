//! FID between two image sets a model makes and holds itself, for the measures of translation
//! systems (pix2pix's G(A) against the targets B, CycleGAN's G_AB(A) against real B and the
//! other way): the `fid` metric plugin compares samples of G(z) with the reference set, which
//! does not apply to a generator whose input is an image.
//!
//! [`SetFid`] loads the feature network once, takes images as the networks see them (floats in
//! [-1, 1], NCHW), turns them into uint8 pixels exactly as the core does for metrics
//! ((x + 1)·127.5, rounded and clamped), and keeps streaming moments of each set, so that the
//! distance is the same Fréchet distance `fid` computes, in the same network's features.
use lab_plugin_api::tch::{Device, Kind, Tensor};

use crate::features::FeatureNet;
use crate::gaussian::{frechet_distance, Moments};
use crate::network::NetworkConfig;

/// The Fréchet distance between a generated and a real image set, in a feature network's
/// features (`forward(images, true)` returns features, as `lab features train` networks and the
/// standard Inception port do).
pub struct SetFid {
    network: FeatureNet,
    generated: Moments,
    real: Moments,
}

impl SetFid {
    /// Loads the feature network at `features` (`~/` is the home folder); errors are keyed
    /// `features`, the architecture config key that names it.
    pub fn load(features: &str, device: Device) -> lab_plugin_api::Result<Self> {
        let features = match (features.strip_prefix("~/"), std::env::var("HOME")) {
            (Some(rest), Ok(home)) => format!("{home}/{rest}"),
            _ => features.to_string(),
        };
        let config = NetworkConfig { features, repeat_gray: true, batch_size: 64 };
        let network = FeatureNet::load(&config, device).map_err(|e| e.with_key("features"))?;
        Ok(Self { network, generated: Moments::default(), real: Moments::default() })
    }

    /// Adds generated images (floats in [-1, 1]).
    pub fn add_generated(&mut self, images: &Tensor) -> lab_plugin_api::Result<()> {
        self.generated.add(&self.network.run(&to_pixels(images), &[true])?)
    }

    /// Adds real images (floats in [-1, 1]).
    pub fn add_real(&mut self, images: &Tensor) -> lab_plugin_api::Result<()> {
        self.real.add(&self.network.run(&to_pixels(images), &[true])?)
    }

    /// The Fréchet distance between the two sets' Gaussians (each needs at least 2 images).
    pub fn distance(&self) -> lab_plugin_api::Result<f64> {
        let sha = self.network.sha256();
        frechet_distance(&self.generated.stats(sha)?, &self.real.stats(sha)?)
    }
}

/// Images in [-1, 1] as the uint8 pixels metrics see (the core's `to_pixels`).
fn to_pixels(x: &Tensor) -> Tensor {
    ((x.detach() + 1.0) * 127.5).round().clamp(0.0, 255.0).to_kind(Kind::Uint8)
}
