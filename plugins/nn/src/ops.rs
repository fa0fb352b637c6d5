//! ATen operations tch binds without an argument the plugins need, called through the C++ shim
//! `src/ops.cpp` (compiled by this crate's build script against the same libtorch). They go
//! through libtorch's dispatcher like any tch call, so autograd, autocast and every device work.
use std::ffi::{c_char, CStr};

use lab_plugin_api::tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn lab_nn_leaky_relu(x: *const C_tensor, slope: f64, error: *mut c_char, error_len: usize) -> *mut C_tensor;
}

/// `x` through libtorch's `leaky_relu` with negative slope `slope`.
///
/// # Panics
/// When libtorch refuses the call (as tch's own infallible wrappers do), with libtorch's message.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    let mut error = [0 as c_char; 1024];
    // SAFETY: `x` is a live tensor for the duration of the call; the shim returns a new tensor
    // that nothing else owns, or null with a NUL-terminated message in `error`.
    let out = unsafe { lab_nn_leaky_relu(x.as_ptr(), slope, error.as_mut_ptr(), error.len()) };
    if out.is_null() {
        // SAFETY: the shim wrote a NUL-terminated string (snprintf) into `error`.
        let message = unsafe { CStr::from_ptr(error.as_ptr()) }.to_string_lossy();
        panic!("leaky_relu (slope {slope}) failed: {message}");
    }
    // SAFETY: a fresh `at::Tensor*` from `new`, which the returned `Tensor` now owns and frees.
    unsafe { Tensor::from_ptr(out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::{Device, Kind};

    #[test]
    fn leaky_relu_matches_the_written_out_function_and_its_gradient() {
        let x = Tensor::from_slice(&[-2.0f64, -0.5, 0.0, 0.5, 3.0]).set_requires_grad(true);
        let y = leaky_relu(&x, 0.2);
        let expected = [-0.4, -0.1, 0.0, 0.5, 3.0];
        assert_eq!(Vec::<f64>::try_from(&y.detach()).unwrap(), expected);
        let grad = Tensor::run_backward(&[y.sum(Kind::Double)], &[&x], false, false);
        // libtorch's convention at 0: the negative side's slope.
        assert_eq!(Vec::<f64>::try_from(&grad[0]).unwrap(), [0.2, 0.2, 0.2, 1.0, 1.0]);
    }

    #[test]
    fn leaky_relu_equals_prelu_bit_for_bit_in_float32() {
        let x = Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let slope = Tensor::from_slice(&[0.1f32]);
        let (a, b) = (leaky_relu(&x, 0.1), x.prelu(&slope));
        assert!(a.equal(&b));
        let up = Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu));
        let ga = Tensor::run_backward(&[(&a * &up).sum(Kind::Float)], &[&x], false, false);
        let gb = Tensor::run_backward(&[(&b * &up).sum(Kind::Float)], &[&x], false, false);
        assert!(ga[0].equal(&gb[0]));
    }

    #[test]
    #[should_panic(expected = "leaky_relu (slope 0.2) failed")]
    fn a_refused_call_panics_with_libtorchs_message() {
        // Integer tensors have no leaky_relu kernel.
        let _ = leaky_relu(&Tensor::from_slice(&[1i64, -1]), 0.2);
    }
}
