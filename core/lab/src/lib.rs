//! `lab`: a research lab for GANs. The runtime behind the `lab` binary: configs, the plugin
//! loader, datasets, the trainer, trackers and the run folder.
pub mod authoring;
pub mod battle;
pub mod cli;
pub mod config;
pub mod data;
pub mod failure;
pub mod metrics;
pub mod numerics;
pub mod plugins;
pub mod report;
pub mod sample;
pub mod seeds;
pub mod sweep;
pub mod track;
pub mod train;
