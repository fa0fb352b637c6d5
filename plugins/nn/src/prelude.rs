//! Everything a G/D architecture plugin names, in one `use lab_nn::prelude::*;`: the adapter
//! ([`Gan`], [`GanModel`], [`Shapes`], [`Critic`]), `tch`'s layers ([`nn`]), the common
//! activation ([`leaky_relu`]), batch norm as reference code starts it
//! ([`reference_batch_norm`]), config checks ([`check`]), and the types a config and a model's
//! `resolve` need. (serde's derives still need `serde` as a dependency of the crate.)
pub use crate::gan::{Critic, Discriminator, Gan, GanModel, Generator, Shapes};
pub use crate::layers::leaky_relu;
pub use crate::norm::reference_batch_norm;
pub use lab_plugin_api::config::check;
pub use lab_plugin_api::tch::{self, nn, Kind, Tensor};
pub use lab_plugin_api::{DataSpec, Result};
pub use serde::{Deserialize, Serialize};
