//! biggan (work in progress)
