//! Augmentation plugins: a differentiable batch transform `apply(x, seed) -> x`, with an optional
//! feedback hook (adaptive schemes such as ADA adjust their strength from D's outputs on reals)
//! and state that is checkpointed with the run.
use std::ffi::c_void;

use abi_stable::std_types::{RStr, RString, RVec};
use serde::{de::DeserializeOwned, Serialize};
use tch::Tensor;

use crate::error::Result;
use crate::library::{guard, guard_or, into_result, BuildEnv, Factory, FfiResult, PluginDescriptor};
use crate::tensor::{OwnedTensor, TensorRef};

crate::abi! {
    #[repr(C)]
    pub struct NamedValue {
        pub name: RString,
        pub value: f64,
    }

    #[repr(C)]
    pub struct AugmentMethods {
        pub apply: extern "C" fn(*mut c_void, TensorRef<'_>, u64) -> FfiResult<OwnedTensor>,
        pub feedback: extern "C" fn(*mut c_void, TensorRef<'_>) -> FfiResult<()>,
        pub state: extern "C" fn(*const c_void) -> FfiResult<RString>,
        pub load_state: extern "C" fn(*mut c_void, RStr<'_>) -> FfiResult<()>,
        pub scalars: extern "C" fn(*const c_void) -> FfiResult<RVec<NamedValue>>,
        pub drop: extern "C" fn(*mut c_void),
    }

    #[repr(C)]
    pub struct AugmentObj {
        pub this: *mut c_void,
        pub vtable: &'static AugmentVTable,
    }
}

/// The table: `size`, then one block per revision (only extended at the end).
#[repr(C)]
pub struct AugmentVTable {
    pub size: usize,
    pub r0: AugmentMethods,
}

/// What a plugin implements to provide an augmentation.
pub trait AugmentPlugin: Sized + Send + 'static {
    /// The name users write as `augment.name`.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Config: Serialize + DeserializeOwned + Default;

    fn create(config: Self::Config, env: BuildEnv) -> Result<Self>;
    /// Transforms a batch of images in [-1, 1]. All randomness must derive from `seed`, so that
    /// runs are reproducible; each sample gets its own draws.
    fn apply(&mut self, x: &Tensor, seed: u64) -> Result<Tensor>;
    /// D's outputs on the real batch, after each discriminator step.
    fn feedback(&mut self, _d_real: &Tensor) -> Result<()> {
        Ok(())
    }
    /// State to checkpoint, as JSON.
    fn state(&self) -> String {
        "{}".to_string()
    }
    fn load_state(&mut self, _json: &str) -> Result<()> {
        Ok(())
    }
    /// Scalars to log, e.g. ADA's `p`.
    fn scalars(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

extern "C" fn create_augment<P: AugmentPlugin>(config: RStr<'_>, env: BuildEnv) -> FfiResult<AugmentObj> {
    guard(|| {
        let config = crate::config::parse::<P::Config>(config.as_str())?;
        let plugin = P::create(config, env)?;
        Ok(AugmentObj { this: Box::into_raw(Box::new(plugin)) as *mut c_void, vtable: &AugmentGlue::<P>::VTABLE })
    })
}

struct AugmentGlue<P>(std::marker::PhantomData<P>);

impl<P: AugmentPlugin> AugmentGlue<P> {
    const VTABLE: AugmentVTable = AugmentVTable {
        size: std::mem::size_of::<AugmentVTable>(),
        r0: AugmentMethods {
            apply: Self::apply,
            feedback: Self::feedback,
            state: Self::state,
            load_state: Self::load_state,
            scalars: Self::scalars,
            drop: Self::drop,
        },
    };

    fn this<'a>(this: *const c_void) -> &'a mut P {
        // SAFETY: `this` is the Box<P> from `create_augment`, alive until `drop`; the host handle
        // takes `&mut self` for mutating calls.
        unsafe { &mut *(this as *mut P) }
    }

    extern "C" fn apply(this: *mut c_void, x: TensorRef<'_>, seed: u64) -> FfiResult<OwnedTensor> {
        guard(|| Self::this(this).apply(&x.to_tensor(), seed).map(OwnedTensor::new))
    }
    extern "C" fn feedback(this: *mut c_void, d_real: TensorRef<'_>) -> FfiResult<()> {
        guard(|| Self::this(this).feedback(&d_real.to_tensor()))
    }
    extern "C" fn state(this: *const c_void) -> FfiResult<RString> {
        guard(|| Ok(Self::this(this).state().into()))
    }
    extern "C" fn load_state(this: *mut c_void, json: RStr<'_>) -> FfiResult<()> {
        guard(|| Self::this(this).load_state(json.as_str()))
    }
    extern "C" fn scalars(this: *const c_void) -> FfiResult<RVec<NamedValue>> {
        guard(|| {
            let values = Self::this(this).scalars();
            Ok(values.into_iter().map(|(name, value)| NamedValue { name: name.into(), value }).collect())
        })
    }
    extern "C" fn drop(this: *mut c_void) {
        // SAFETY: called once, by the owning handle's Drop.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(this as *mut P) }));
    }
}

pub fn descriptor<P: AugmentPlugin>(version: &str) -> PluginDescriptor {
    PluginDescriptor {
        name: P::NAME.into(),
        version: version.into(),
        description: P::DESCRIPTION.into(),
        default_config: crate::config::default_toml::<P::Config>().into(),
        factory: Factory::Augmentation(create_augment::<P>),
    }
}

/// An augmentation created from a plugin. The library must stay loaded while it lives.
pub struct Augment {
    obj: AugmentObj,
}

impl Augment {
    /// # Safety
    /// `obj` must come from a loaded plugin's factory, and that library must outlive the handle.
    pub unsafe fn from_raw(obj: AugmentObj) -> Self {
        Self { obj }
    }
    pub fn apply(&mut self, x: &Tensor, seed: u64) -> Result<Tensor> {
        into_result((self.obj.vtable.r0.apply)(self.obj.this, TensorRef::new(x), seed)).map(OwnedTensor::into_tensor)
    }
    pub fn feedback(&mut self, d_real: &Tensor) -> Result<()> {
        into_result((self.obj.vtable.r0.feedback)(self.obj.this, TensorRef::new(d_real)))
    }
    pub fn state(&self) -> Result<String> {
        into_result((self.obj.vtable.r0.state)(self.obj.this)).map(RString::into_string)
    }
    pub fn load_state(&mut self, json: &str) -> Result<()> {
        into_result((self.obj.vtable.r0.load_state)(self.obj.this, json.into()))
    }
    pub fn scalars(&self) -> Result<Vec<(String, f64)>> {
        let v = into_result((self.obj.vtable.r0.scalars)(self.obj.this))?;
        Ok(v.into_iter().map(|n| (n.name.into_string(), n.value)).collect())
    }
}

impl Drop for Augment {
    fn drop(&mut self) {
        guard_or((), || (self.obj.vtable.r0.drop)(self.obj.this))
    }
}
