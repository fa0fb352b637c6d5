//! This plugin's name bound into the shared input checks of `lab_plugin_api::inputs`.
use lab_plugin_api::inputs as shared;
use lab_plugin_api::tch::Tensor;

pub use shared::Inputs;

pub fn split<'a>(network: &str, inputs: &'a [Tensor], conditional: bool) -> Result<Inputs<'a>, String> {
    shared::split("dcgan", network, inputs, conditional)
}

#[allow(dead_code)]
pub fn latent(z: &Tensor, z_dim: i64) -> Result<Tensor, String> {
    shared::latent("dcgan", z, z_dim)
}

pub fn check_shape(network: &str, what: &str, x: &Tensor, rest: &[i64]) -> Result<(), String> {
    shared::check_shape("dcgan", network, what, x, rest)
}
