//! Test support for lab, kept out of the shipped binary: servers from the project venv that
//! tests talk to as a user's tools would.
//!
//! - [`local_server`]: starts a server process on a free 127.0.0.1 port, waits until it
//!   answers, and kills its whole process group on drop.
//! - [`mlflow_server`]: a real `mlflow server`, and read-backs of what a run holds (params,
//!   tags, metric histories, artifacts) through its REST API.
//! - [`tensorboard_server`]: a real `tensorboard` over a log folder, and the HParams
//!   dashboard's data endpoints.
//!
//! The crate does not depend on `lab`, so `lab`'s own unit tests can use it.

pub mod local_server;
pub mod mlflow_server;
pub mod tensorboard_server;
