//! Tensors across the library boundary: libtorch's own C handle, with ownership made explicit.
//!
//! libtorch is a single shared library in the process, so the core and every plugin share one
//! allocator, one autograd engine and one RNG. A tensor therefore crosses as the `C_tensor`
//! pointer that `tch` wraps, and the only question is who frees it:
//! - [`OwnedTensor`]: the receiver takes ownership and frees it once (or converts it back into a
//!   [`tch::Tensor`], which frees it on drop);
//! - [`TensorRef`]: lent for the duration of one call; the receiver takes a refcounted shallow
//!   copy if it wants to keep it. Autograd history is preserved either way.
use std::marker::PhantomData;

use tch::Tensor;
use torch_sys::C_tensor;

crate::abi! {
    #[repr(transparent)]
    pub struct OwnedTensor {
        ptr: *mut C_tensor,
    }

    #[repr(transparent)]
    #[derive(Clone, Copy)]
    pub struct TensorRef<'a> {
        ptr: *mut C_tensor,
        life: PhantomData<&'a Tensor>,
    }

    #[repr(C)]
    pub struct NamedTensor {
        pub name: abi_stable::std_types::RString,
        pub tensor: OwnedTensor,
        pub trainable: bool,
    }
}

// SAFETY: a libtorch tensor handle may move between threads; libtorch's refcounting is atomic.
unsafe impl Send for OwnedTensor {}

impl OwnedTensor {
    /// Hands `tensor` over; the receiver becomes responsible for freeing it.
    pub fn new(mut tensor: Tensor) -> Self {
        let ptr = tensor.as_mut_ptr();
        std::mem::forget(tensor);
        Self { ptr }
    }

    /// Takes the tensor back as a `tch::Tensor`, which frees it when dropped.
    pub fn into_tensor(self) -> Tensor {
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: `ptr` came from `OwnedTensor::new`, which forgot its Tensor; nobody else frees it.
        unsafe { Tensor::from_ptr(ptr) }
    }
}

impl Drop for OwnedTensor {
    fn drop(&mut self) {
        // SAFETY: as in `into_tensor`; dropping the Tensor frees the handle exactly once.
        drop(unsafe { Tensor::from_ptr(self.ptr) });
    }
}

impl<'a> TensorRef<'a> {
    /// Lends `tensor` for as long as the borrow lives.
    pub fn new(tensor: &'a Tensor) -> Self {
        Self { ptr: tensor.as_ptr() as *mut C_tensor, life: PhantomData }
    }

    /// A shallow, refcounted copy sharing storage and autograd history with the lender's tensor.
    pub fn to_tensor(&self) -> Tensor {
        // SAFETY: the lender keeps the tensor alive for 'a; clone_from_ptr bumps the refcount.
        unsafe { Tensor::clone_from_ptr(self.ptr) }
    }
}

impl NamedTensor {
    pub fn new(name: impl Into<String>, tensor: Tensor, trainable: bool) -> Self {
        Self { name: name.into().into(), tensor: OwnedTensor::new(tensor), trainable }
    }
}

/// Lends a slice of tensors.
pub fn refs(tensors: &[Tensor]) -> Vec<TensorRef<'_>> {
    tensors.iter().map(TensorRef::new).collect()
}

/// Takes a list of owned tensors back.
pub fn take_all(tensors: abi_stable::std_types::RVec<OwnedTensor>) -> Vec<Tensor> {
    tensors.into_iter().map(OwnedTensor::into_tensor).collect()
}

/// Hands a list of tensors over.
pub fn give_all(tensors: Vec<Tensor>) -> abi_stable::std_types::RVec<OwnedTensor> {
    tensors.into_iter().map(OwnedTensor::new).collect()
}
