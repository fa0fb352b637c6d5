// ATen operations that tch binds without an argument lab needs. Compiled against the same
// libtorch headers as torch-sys's own wrapper, by this crate's build script, and called the way
// tch's generated wrappers are: an `at::Tensor*` in, a new `at::Tensor*` out (owned by the Rust
// `Tensor` that wraps it), and errors as text instead of exceptions across the boundary.
#include <ATen/core/Tensor.h>
#include <ATen/ops/leaky_relu.h>

#include <cstdio>
#include <exception>

extern "C" {

// `at::leaky_relu(x, slope)`: tch's `leaky_relu` has no slope argument (it is fixed at 0.01).
// Returns null and writes the message into `error` (`error_len` bytes) when libtorch throws.
at::Tensor* lab_nn_leaky_relu(const at::Tensor* x, double slope, char* error, size_t error_len) {
  try {
    return new at::Tensor(at::leaky_relu(*x, slope));
  } catch (const std::exception& e) {
    std::snprintf(error, error_len, "%s", e.what());
    return nullptr;
  }
}
}
