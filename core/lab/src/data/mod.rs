//! Datasets: loaded once, as uint8, onto the run device.
