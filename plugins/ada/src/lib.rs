//! ada (work in progress)
