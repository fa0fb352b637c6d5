//! augment (work in progress)
