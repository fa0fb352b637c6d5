// Autocast's switches for a device type and a dtype, which tch does not bind: it exposes only
// the deprecated CUDA-only `set_enabled`, with no way to choose bf16 or to reach the CPU's
// autocast. Compiled against the same libtorch headers by the `lab` crate's build script.
// Only plain integers cross the boundary, so the C++ ABI flag does not matter here.
#include <ATen/autocast_mode.h>

namespace {
at::DeviceType device_type(int device) { return device == 1 ? at::kCUDA : at::kCPU; }
}  // namespace

extern "C" {

// Turns autocast on for `device` (0 = CPU, 1 = CUDA) in `dtype` (0 = float16, 1 = bfloat16).
// Writes the previous switch and dtype (0/1 as above, 2 for anything else) so the caller can
// restore them. Returns 0, or 1 when libtorch refused.
int lab_autocast_enter(int device, int dtype, int* was_enabled, int* was_dtype) {
  try {
    auto type = device_type(device);
    *was_enabled = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    auto previous = at::autocast::get_autocast_dtype(type);
    *was_dtype = previous == at::kHalf ? 0 : previous == at::kBFloat16 ? 1 : 2;
    at::autocast::set_autocast_dtype(type, dtype == 1 ? at::kBFloat16 : at::kHalf);
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return 1;
  }
}

// Restores what `lab_autocast_enter` replaced; the outermost exit empties autocast's cache of
// casted weights, as `torch.autocast.__exit__` does.
int lab_autocast_exit(int device, int was_enabled, int was_dtype) {
  try {
    auto type = device_type(device);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(type, was_enabled == 1);
    if (was_dtype == 0) at::autocast::set_autocast_dtype(type, at::kHalf);
    if (was_dtype == 1) at::autocast::set_autocast_dtype(type, at::kBFloat16);
    return 0;
  } catch (...) {
    return 1;
  }
}

// Whether autocast is on for `device`, for tests.
int lab_autocast_is_enabled(int device) {
  try {
    return at::autocast::is_autocast_enabled(device_type(device)) ? 1 : 0;
  } catch (...) {
    return -1;
  }
}
}
