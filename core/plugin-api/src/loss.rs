//! Loss (objective) plugins compute the discriminator-phase and generator-phase losses through a
//! [`LossCtx`] the core implements: the real batch and labels, latent samples, the generator, the
//! discriminator with augmentation applied, and any other named network. See the crate docs for
//! how WGAN-GP, R1, CR, InfoGAN and BiGAN are written against it.
use std::ffi::c_void;

use abi_stable::std_types::{ROption, RSlice, RStr, RVec};
use serde::{de::DeserializeOwned, Serialize};
use tch::Tensor;

use crate::library::{guard, guard_or, into_result, BuildEnv, Factory, FfiResult, PluginDescriptor};
use crate::tensor::{give_all, refs, take_all, OwnedTensor, TensorRef};

crate::abi! {
    #[repr(u32)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Phase {
        Discriminator = 0,
        Generator = 1,
    }

    /// What a batch given to the discriminator is, so the core can track D(x), D(G(z)) and feed
    /// adaptive augmentation.
    #[repr(u32)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Role {
        Real = 0,
        Fake = 1,
        Other = 2,
    }

    #[repr(C)]
    pub struct LossContextVTable {
        pub phase: extern "C" fn(*mut c_void) -> Phase,
        pub step: extern "C" fn(*mut c_void) -> u64,
        pub batch_size: extern "C" fn(*mut c_void) -> i64,
        pub num_classes: extern "C" fn(*mut c_void) -> i64,
        pub real: extern "C" fn(*mut c_void) -> FfiResult<OwnedTensor>,
        pub real_labels: extern "C" fn(*mut c_void) -> FfiResult<ROption<OwnedTensor>>,
        pub sample_z: extern "C" fn(*mut c_void, i64) -> FfiResult<OwnedTensor>,
        pub sample_labels: extern "C" fn(*mut c_void, i64) -> FfiResult<ROption<OwnedTensor>>,
        pub generate: extern "C" fn(*mut c_void, TensorRef<'_>, ROption<TensorRef<'_>>) -> FfiResult<OwnedTensor>,
        pub discriminate: extern "C" fn(*mut c_void, TensorRef<'_>, ROption<TensorRef<'_>>, bool, Role) -> FfiResult<RVec<OwnedTensor>>,
        pub augment: extern "C" fn(*mut c_void, TensorRef<'_>) -> FfiResult<OwnedTensor>,
        pub run_network: extern "C" fn(*mut c_void, RStr<'_>, RSlice<'_, TensorRef<'_>>, bool) -> FfiResult<RVec<OwnedTensor>>,
        pub log_scalar: extern "C" fn(*mut c_void, RStr<'_>, TensorRef<'_>),
    }

    #[repr(C)]
    pub struct LossContext {
        pub this: *mut c_void,
        pub vtable: &'static LossContextVTable,
    }

    #[repr(C)]
    pub struct LossVTable {
        pub d_loss: extern "C" fn(*mut c_void, *const LossContext) -> FfiResult<OwnedTensor>,
        pub g_loss: extern "C" fn(*mut c_void, *const LossContext) -> FfiResult<OwnedTensor>,
        pub drop: extern "C" fn(*mut c_void),
    }

    #[repr(C)]
    pub struct LossObj {
        pub this: *mut c_void,
        pub vtable: &'static LossVTable,
    }
}

// ---------------------------------------------------------------------------------------------
// Plugin side

/// What a plugin implements to provide a loss.
pub trait LossPlugin: Sized + Send + 'static {
    /// The name users write as `loss.name`.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Config: Serialize + DeserializeOwned + Default;

    fn create(config: Self::Config, env: BuildEnv) -> Result<Self, String>;
    /// The loss the discriminator-phase networks minimise.
    fn d_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor, String>;
    /// The loss the generator-phase networks minimise.
    fn g_loss(&mut self, ctx: &mut LossCtx<'_>) -> Result<Tensor, String>;
}

/// The core's services, as loss plugin code sees them.
pub struct LossCtx<'a> {
    raw: &'a LossContext,
    fake: Option<(Tensor, Option<Tensor>)>,
}

impl<'a> LossCtx<'a> {
    fn call<T>(&self, f: impl FnOnce(*mut c_void, &'static LossContextVTable) -> T) -> T {
        f(self.raw.this, self.raw.vtable)
    }

    pub fn phase(&self) -> Phase {
        self.call(|t, v| (v.phase)(t))
    }
    /// The generator step being computed (0-based).
    pub fn step(&self) -> u64 {
        self.call(|t, v| (v.step)(t))
    }
    pub fn batch_size(&self) -> i64 {
        self.call(|t, v| (v.batch_size)(t))
    }
    /// 0 for unconditional models.
    pub fn num_classes(&self) -> i64 {
        self.call(|t, v| (v.num_classes)(t))
    }
    /// The real batch, as floats in [-1, 1], NCHW, on the run's device. Not augmented.
    pub fn real(&self) -> Result<Tensor, String> {
        into_result(self.call(|t, v| (v.real)(t))).map(OwnedTensor::into_tensor)
    }
    /// The real batch's class labels (int64), when the model is conditional.
    pub fn real_labels(&self) -> Result<Option<Tensor>, String> {
        let r = into_result(self.call(|t, v| (v.real_labels)(t)))?;
        Ok(r.into_option().map(OwnedTensor::into_tensor))
    }
    /// `n` latent vectors from the trainer's seeded stream.
    pub fn sample_z(&self, n: i64) -> Result<Tensor, String> {
        into_result(self.call(|t, v| (v.sample_z)(t, n))).map(OwnedTensor::into_tensor)
    }
    /// `n` uniformly drawn labels for conditional models, `None` otherwise.
    pub fn sample_labels(&self, n: i64) -> Result<Option<Tensor>, String> {
        let r = into_result(self.call(|t, v| (v.sample_labels)(t, n)))?;
        Ok(r.into_option().map(OwnedTensor::into_tensor))
    }
    /// Runs the generator. In the discriminator phase the core runs it without autograd history.
    pub fn generate(&self, z: &Tensor, labels: Option<&Tensor>) -> Result<Tensor, String> {
        let labels = labels.map(TensorRef::new);
        let r = self.call(|t, v| (v.generate)(t, TensorRef::new(z), labels.into()));
        into_result(r).map(OwnedTensor::into_tensor)
    }
    /// One fake batch of `batch_size` (and its labels), generated once per loss call and reused.
    pub fn fake(&mut self) -> Result<(Tensor, Option<Tensor>), String> {
        if self.fake.is_none() {
            let n = self.batch_size();
            let z = self.sample_z(n)?;
            let y = self.sample_labels(n)?;
            let x = self.generate(&z, y.as_ref())?;
            self.fake = Some((x, y));
        }
        let (x, y) = self.fake.as_ref().expect("just set");
        Ok((x.shallow_clone(), y.as_ref().map(Tensor::shallow_clone)))
    }
    /// Runs the discriminator on `x`, applying the run's augmentation first when `augment` is set
    /// (fresh random parameters on every call). Returns all of D's outputs; the first is the logit.
    pub fn discriminate(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        augment: bool,
        role: Role,
    ) -> Result<Vec<Tensor>, String> {
        let labels = labels.map(TensorRef::new);
        let r = self.call(|t, v| (v.discriminate)(t, TensorRef::new(x), labels.into(), augment, role));
        into_result(r).map(take_all)
    }
    /// D's logit on the (augmented) real batch.
    pub fn d_real(&self) -> Result<Tensor, String> {
        let (x, y) = (self.real()?, self.real_labels()?);
        Ok(self.discriminate(&x, y.as_ref(), true, Role::Real)?.swap_remove(0))
    }
    /// D's logit on the (augmented) shared fake batch.
    pub fn d_fake(&mut self) -> Result<Tensor, String> {
        let (x, y) = self.fake()?;
        Ok(self.discriminate(&x, y.as_ref(), true, Role::Fake)?.swap_remove(0))
    }
    /// Applies the run's augmentation (fresh random parameters), differentiably.
    pub fn augment(&self, x: &Tensor) -> Result<Tensor, String> {
        into_result(self.call(|t, v| (v.augment)(t, TensorRef::new(x)))).map(OwnedTensor::into_tensor)
    }
    /// Runs any network the architecture declares, e.g. `encoder` or `q_head`.
    pub fn run_network(&self, name: &str, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>, String> {
        let lent = refs(inputs);
        let r = self.call(|t, v| (v.run_network)(t, name.into(), lent.as_slice().into(), train));
        into_result(r).map(take_all)
    }
    /// Logs a scalar (a 0-d tensor; the core reads it only at logging steps, so no sync here).
    pub fn log(&self, name: &str, value: &Tensor) {
        self.call(|t, v| (v.log_scalar)(t, name.into(), TensorRef::new(value)))
    }
}

extern "C" fn create_loss<P: LossPlugin>(config: RStr<'_>, env: BuildEnv) -> FfiResult<LossObj> {
    guard(|| {
        let config = crate::config::parse::<P::Config>(config.as_str())?;
        let plugin = P::create(config, env)?;
        Ok(LossObj { this: Box::into_raw(Box::new(plugin)) as *mut c_void, vtable: &LossGlue::<P>::VTABLE })
    })
}

struct LossGlue<P>(std::marker::PhantomData<P>);

impl<P: LossPlugin> LossGlue<P> {
    const VTABLE: LossVTable = LossVTable { d_loss: Self::d_loss, g_loss: Self::g_loss, drop: Self::drop };

    fn run(
        this: *mut c_void,
        ctx: *const LossContext,
        f: fn(&mut P, &mut LossCtx<'_>) -> Result<Tensor, String>,
    ) -> FfiResult<OwnedTensor> {
        guard(|| {
            // SAFETY: `this` is the Box<P> from `create_loss`; `ctx` is valid for this call.
            let (p, raw) = unsafe { (&mut *(this as *mut P), &*ctx) };
            let mut ctx = LossCtx { raw, fake: None };
            f(p, &mut ctx).map(OwnedTensor::new)
        })
    }

    extern "C" fn d_loss(this: *mut c_void, ctx: *const LossContext) -> FfiResult<OwnedTensor> {
        Self::run(this, ctx, P::d_loss)
    }

    extern "C" fn g_loss(this: *mut c_void, ctx: *const LossContext) -> FfiResult<OwnedTensor> {
        Self::run(this, ctx, P::g_loss)
    }

    extern "C" fn drop(this: *mut c_void) {
        // SAFETY: called once, by the owning handle's Drop.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(this as *mut P) }));
    }
}

pub fn descriptor<P: LossPlugin>(version: &str) -> PluginDescriptor {
    PluginDescriptor {
        name: P::NAME.into(),
        version: version.into(),
        description: P::DESCRIPTION.into(),
        default_config: crate::config::default_toml::<P::Config>().into(),
        factory: Factory::Loss(create_loss::<P>),
    }
}

// ---------------------------------------------------------------------------------------------
// Core side

/// The services the core provides to loss plugins during one phase.
pub trait LossHost {
    fn phase(&self) -> Phase;
    fn step(&self) -> u64;
    fn batch_size(&self) -> i64;
    fn num_classes(&self) -> i64;
    fn real(&mut self) -> Result<Tensor, String>;
    fn real_labels(&mut self) -> Result<Option<Tensor>, String>;
    fn sample_z(&mut self, n: i64) -> Result<Tensor, String>;
    fn sample_labels(&mut self, n: i64) -> Result<Option<Tensor>, String>;
    fn generate(&mut self, z: &Tensor, labels: Option<&Tensor>) -> Result<Tensor, String>;
    fn discriminate(&mut self, x: &Tensor, labels: Option<&Tensor>, augment: bool, role: Role)
        -> Result<Vec<Tensor>, String>;
    fn augment(&mut self, x: &Tensor) -> Result<Tensor, String>;
    fn run_network(&mut self, name: &str, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>, String>;
    fn log_scalar(&mut self, name: &str, value: &Tensor);
}

type HostRef<'h> = &'h mut dyn LossHost;

fn host<'h>(this: *mut c_void) -> &'h mut dyn LossHost {
    // SAFETY: `this` points at the `HostRef` that `Loss::call` keeps alive for the call.
    unsafe { &mut **(this as *mut HostRef<'h>) }
}

extern "C" fn h_phase(t: *mut c_void) -> Phase {
    guard_or(Phase::Discriminator, || host(t).phase())
}
extern "C" fn h_step(t: *mut c_void) -> u64 {
    guard_or(0, || host(t).step())
}
extern "C" fn h_batch_size(t: *mut c_void) -> i64 {
    guard_or(0, || host(t).batch_size())
}
extern "C" fn h_num_classes(t: *mut c_void) -> i64 {
    guard_or(0, || host(t).num_classes())
}
extern "C" fn h_real(t: *mut c_void) -> FfiResult<OwnedTensor> {
    guard(|| host(t).real().map(OwnedTensor::new))
}
extern "C" fn h_real_labels(t: *mut c_void) -> FfiResult<ROption<OwnedTensor>> {
    guard(|| Ok(host(t).real_labels()?.map(OwnedTensor::new).into()))
}
extern "C" fn h_sample_z(t: *mut c_void, n: i64) -> FfiResult<OwnedTensor> {
    guard(|| host(t).sample_z(n).map(OwnedTensor::new))
}
extern "C" fn h_sample_labels(t: *mut c_void, n: i64) -> FfiResult<ROption<OwnedTensor>> {
    guard(|| Ok(host(t).sample_labels(n)?.map(OwnedTensor::new).into()))
}
extern "C" fn h_generate(t: *mut c_void, z: TensorRef<'_>, y: ROption<TensorRef<'_>>) -> FfiResult<OwnedTensor> {
    guard(|| {
        let y = y.into_option().map(|y| y.to_tensor());
        host(t).generate(&z.to_tensor(), y.as_ref()).map(OwnedTensor::new)
    })
}
extern "C" fn h_discriminate(
    t: *mut c_void,
    x: TensorRef<'_>,
    y: ROption<TensorRef<'_>>,
    augment: bool,
    role: Role,
) -> FfiResult<RVec<OwnedTensor>> {
    guard(|| {
        let y = y.into_option().map(|y| y.to_tensor());
        host(t).discriminate(&x.to_tensor(), y.as_ref(), augment, role).map(give_all)
    })
}
extern "C" fn h_augment(t: *mut c_void, x: TensorRef<'_>) -> FfiResult<OwnedTensor> {
    guard(|| host(t).augment(&x.to_tensor()).map(OwnedTensor::new))
}
extern "C" fn h_run_network(
    t: *mut c_void,
    name: RStr<'_>,
    inputs: RSlice<'_, TensorRef<'_>>,
    train: bool,
) -> FfiResult<RVec<OwnedTensor>> {
    guard(|| {
        let inputs: Vec<Tensor> = inputs.iter().map(TensorRef::to_tensor).collect();
        host(t).run_network(name.as_str(), &inputs, train).map(give_all)
    })
}
extern "C" fn h_log_scalar(t: *mut c_void, name: RStr<'_>, value: TensorRef<'_>) {
    guard_or((), || host(t).log_scalar(name.as_str(), &value.to_tensor()))
}

static HOST_VTABLE: LossContextVTable = LossContextVTable {
    phase: h_phase,
    step: h_step,
    batch_size: h_batch_size,
    num_classes: h_num_classes,
    real: h_real,
    real_labels: h_real_labels,
    sample_z: h_sample_z,
    sample_labels: h_sample_labels,
    generate: h_generate,
    discriminate: h_discriminate,
    augment: h_augment,
    run_network: h_run_network,
    log_scalar: h_log_scalar,
};

/// A loss created from a plugin. The library must stay loaded while it lives.
pub struct Loss {
    obj: LossObj,
}

impl Loss {
    /// # Safety
    /// `obj` must come from a loaded plugin's factory, and that library must outlive the handle.
    pub unsafe fn from_raw(obj: LossObj) -> Self {
        Self { obj }
    }

    fn call(
        &mut self,
        host: &mut dyn LossHost,
        f: extern "C" fn(*mut c_void, *const LossContext) -> FfiResult<OwnedTensor>,
    ) -> Result<Tensor, String> {
        let mut host_ref: HostRef<'_> = host;
        let ctx = LossContext { this: &mut host_ref as *mut HostRef<'_> as *mut c_void, vtable: &HOST_VTABLE };
        into_result(f(self.obj.this, &ctx)).map(OwnedTensor::into_tensor)
    }

    pub fn d_loss(&mut self, host: &mut dyn LossHost) -> Result<Tensor, String> {
        let f = self.obj.vtable.d_loss;
        self.call(host, f)
    }

    pub fn g_loss(&mut self, host: &mut dyn LossHost) -> Result<Tensor, String> {
        let f = self.obj.vtable.g_loss;
        self.call(host, f)
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        (self.obj.vtable.drop)(self.obj.this)
    }
}
