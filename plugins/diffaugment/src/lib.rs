//! diffaugment (work in progress)
