//! Trackers: metrics.jsonl, TensorBoard event files, sample grids.
