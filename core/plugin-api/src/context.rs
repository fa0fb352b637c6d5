//! Contexts the core lends to plugin code (the loss context, the visualisation context),
//! generated from one list of methods.
//!
//! [`host_context!`](crate::host_context) takes the methods as `fn name(arg: kind, ..) -> kind;`
//! and writes everything else: the `#[repr(C)]` table (with its `size` first, so a plugin can
//! tell which methods an older core lacks), the trait the core implements, the `extern "C"`
//! glue that converts arguments and catches panics, and the safe methods plugin code calls.
//! Adding a method to a context is one line in the list plus its implementation in the core.
//!
//! Kinds: arguments `tensor` (`&Tensor`), `opt_tensor` (`Option<&Tensor>`), `tensors`
//! (`&[Tensor]`), `str` (`&str`), and the scalars `i64`, `u64`, `f64`, `bool`; results
//! `tensor`, `opt_tensor`, `tensors`, `string`, `unit` and the scalars. Every method returns
//! `Result<_, Error>`, so a failure or panic on either side arrives as an [`Error`](crate::Error).

/// The Rust and C types of each kind, and the conversions between them.
#[doc(hidden)]
#[macro_export]
macro_rules! __kind {
    (arg tensor) => { &$crate::tch::Tensor };
    (arg opt_tensor) => { ::std::option::Option<&$crate::tch::Tensor> };
    (arg tensors) => { &[$crate::tch::Tensor] };
    (arg str) => { &str };
    (arg $s:ident) => { $s };

    (ffi_arg tensor) => { $crate::tensor::TensorRef<'_> };
    (ffi_arg opt_tensor) => { $crate::abi_stable::std_types::ROption<$crate::tensor::TensorRef<'_>> };
    (ffi_arg tensors) => { $crate::abi_stable::std_types::RSlice<'_, $crate::tensor::TensorRef<'_>> };
    (ffi_arg str) => { $crate::abi_stable::std_types::RStr<'_> };
    (ffi_arg $s:ident) => { $s };

    (to_ffi tensor $e:expr) => { $crate::tensor::TensorRef::new($e) };
    (to_ffi opt_tensor $e:expr) => { $crate::abi_stable::std_types::ROption::from($e.map($crate::tensor::TensorRef::new)) };
    (to_ffi tensors $e:expr) => { $crate::abi_stable::std_types::RSlice::from_slice(&$crate::tensor::refs($e)) };
    (to_ffi str $e:expr) => { $crate::abi_stable::std_types::RStr::from($e) };
    (to_ffi $s:ident $e:expr) => { $e };

    (from_ffi tensor $e:expr) => { $e.to_tensor() };
    (from_ffi opt_tensor $e:expr) => { $e.into_option().map(|t| t.to_tensor()) };
    (from_ffi tensors $e:expr) => { $e.iter().map($crate::tensor::TensorRef::to_tensor).collect::<::std::vec::Vec<_>>() };
    (from_ffi $s:ident $e:expr) => { $e };

    (as_arg tensor $v:ident) => { &$v };
    (as_arg opt_tensor $v:ident) => { $v.as_ref() };
    (as_arg tensors $v:ident) => { &$v[..] };
    (as_arg str $v:ident) => { $v.as_str() };
    (as_arg $s:ident $v:ident) => { $v };

    (ret tensor) => { $crate::tch::Tensor };
    (ret opt_tensor) => { ::std::option::Option<$crate::tch::Tensor> };
    (ret tensors) => { ::std::vec::Vec<$crate::tch::Tensor> };
    (ret string) => { ::std::string::String };
    (ret unit) => { () };
    (ret $s:ident) => { $s };

    (ffi_ret tensor) => { $crate::tensor::OwnedTensor };
    (ffi_ret opt_tensor) => { $crate::abi_stable::std_types::ROption<$crate::tensor::OwnedTensor> };
    (ffi_ret tensors) => { $crate::abi_stable::std_types::RVec<$crate::tensor::OwnedTensor> };
    (ffi_ret string) => { $crate::abi_stable::std_types::RString };
    (ffi_ret unit) => { () };
    (ffi_ret $s:ident) => { $s };

    (ret_to_ffi tensor $v:expr) => { $crate::tensor::OwnedTensor::new($v) };
    (ret_to_ffi opt_tensor $v:expr) => { $crate::abi_stable::std_types::ROption::from($v.map($crate::tensor::OwnedTensor::new)) };
    (ret_to_ffi tensors $v:expr) => { $crate::tensor::give_all($v) };
    (ret_to_ffi string $v:expr) => { $crate::abi_stable::std_types::RString::from($v) };
    (ret_to_ffi $s:ident $v:expr) => { $v };

    (ret_from_ffi tensor $v:expr) => { $v.into_tensor() };
    (ret_from_ffi opt_tensor $v:expr) => { $v.into_option().map($crate::tensor::OwnedTensor::into_tensor) };
    (ret_from_ffi tensors $v:expr) => { $crate::tensor::take_all($v) };
    (ret_from_ffi string $v:expr) => { $v.into_string() };
    (ret_from_ffi $s:ident $v:expr) => { $v };
}

/// Generates a context from its method list; see the [module docs](crate::context).
///
/// `context Ctx / Host / VTable / Raw / Glue / LAYOUT;` names, in order: the plugin-side wrapper
/// (a struct with a `raw: &Raw` field, defined by hand so it can carry helpers), the trait the
/// core implements, the C table, the C object handed to the plugin, the core-side glue (with
/// `Glue::with(host, |raw| ..)`), and the const holding the list's text for the fingerprint.
#[doc(hidden)]
#[macro_export]
macro_rules! host_context {
    (
        context $Ctx:ident / $Host:ident / $VTable:ident / $Raw:ident / $Glue:ident / $LAYOUT:ident;
        $(
            $(#[$m:meta])*
            fn $name:ident ( $( $arg:ident : $kind:ident ),* ) -> $ret:ident ;
        )*
    ) => {
        /// The context's C table. `size` is the table's size as its creator compiled it.
        #[repr(C)]
        pub struct $VTable {
            pub size: usize,
            $( pub $name: extern "C" fn(*mut ::std::ffi::c_void $(, $crate::__kind!(ffi_arg $kind))*)
                -> $crate::library::FfiResult<$crate::__kind!(ffi_ret $ret)>, )*
        }

        /// The context as it crosses the boundary: the core's object and its table.
        #[repr(C)]
        pub struct $Raw {
            pub this: *mut ::std::ffi::c_void,
            pub vtable: &'static $VTable,
        }

        #[doc(hidden)]
        pub const $LAYOUT: &str = stringify!($( fn $name ( $( $arg : $kind ),* ) -> $ret ; )*);

        /// What the core implements to serve this context.
        pub trait $Host {
            $( $(#[$m])* fn $name(&mut self $(, $arg: $crate::__kind!(arg $kind))*) -> $crate::Result<$crate::__kind!(ret $ret)>; )*
        }

        /// The core side's glue: one `extern "C"` function per method.
        pub struct $Glue;

        impl $Glue {
            fn host<'h>(this: *mut ::std::ffi::c_void) -> &'h mut dyn $Host {
                // SAFETY: `this` points at the `&mut dyn Host` that `with` keeps alive for the call.
                unsafe { &mut **(this as *mut &'h mut dyn $Host) }
            }

            $(
                #[allow(clippy::unused_unit, unused_parens)]
                extern "C" fn $name(this: *mut ::std::ffi::c_void $(, $arg: $crate::__kind!(ffi_arg $kind))*)
                    -> $crate::library::FfiResult<$crate::__kind!(ffi_ret $ret)> {
                    $crate::library::guard(|| {
                        $( let $arg = $crate::__kind!(from_ffi $kind $arg); )*
                        let out = Self::host(this).$name($( $crate::__kind!(as_arg $kind $arg) ),*)?;
                        Ok($crate::__kind!(ret_to_ffi $ret out))
                    })
                }
            )*

            pub const VTABLE: $VTable = $VTable { size: ::std::mem::size_of::<$VTable>(), $( $name: Self::$name, )* };

            /// Runs `f` with a context that forwards every call to `host`.
            pub fn with<R>(host: &mut dyn $Host, f: impl FnOnce(&$Raw) -> R) -> R {
                let mut host: &mut dyn $Host = host;
                let raw = $Raw { this: &mut host as *mut &mut dyn $Host as *mut ::std::ffi::c_void, vtable: &Self::VTABLE };
                f(&raw)
            }
        }

        impl $Ctx<'_> {
            $(
                $(#[$m])*
                #[allow(clippy::unused_unit, unused_parens)]
                pub fn $name(&self $(, $arg: $crate::__kind!(arg $kind))*) -> $crate::Result<$crate::__kind!(ret $ret)> {
                    let table = self.raw.vtable;
                    // A core built before this method existed hands over a shorter table.
                    if ::std::mem::offset_of!($VTable, $name) >= table.size {
                        return Err($crate::Error::new(concat!(
                            "this lab is older than the plugin's interface: its context has no `",
                            stringify!($name),
                            "`; update lab or rebuild the plugin against it"
                        )));
                    }
                    let out = (table.$name)(self.raw.this $(, $crate::__kind!(to_ffi $kind $arg))*);
                    $crate::library::into_result(out).map(|v| $crate::__kind!(ret_from_ffi $ret v))
                }
            )*
        }
    };
}
