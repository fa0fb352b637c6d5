//! Metric plugins stream over batches: `reset`, `update(real | fake batch)`, `compute -> named
//! values`, each value flagged `higher_is_better`. Metrics that need a feature network load it
//! from a local TorchScript file named in their config. `protocol` describes how values were
//! obtained (feature network and its hash, resize rule), so it is recorded beside every number.
use std::ffi::c_void;

use abi_stable::std_types::{ROption, RStr, RString, RVec};
use serde::{de::DeserializeOwned, Serialize};
use tch::Tensor;

use crate::error::Result;
use crate::library::{guard, guard_or, into_result, BuildEnv, Factory, FfiResult, PluginDescriptor};
use crate::tensor::TensorRef;

crate::abi! {
    #[repr(C)]
    pub struct MetricValue {
        pub name: RString,
        pub value: f64,
        pub higher_is_better: bool,
    }

    #[repr(C)]
    pub struct MetricMethods {
        pub reset: extern "C" fn(*mut c_void) -> FfiResult<()>,
        /// A batch of uint8 NCHW images on the run's device; `fake` says which side it belongs to.
        pub update: extern "C" fn(*mut c_void, TensorRef<'_>, bool) -> FfiResult<()>,
        pub compute: extern "C" fn(*mut c_void) -> FfiResult<RVec<MetricValue>>,
        pub protocol: extern "C" fn(*const c_void) -> FfiResult<RString>,
        pub drop: extern "C" fn(*mut c_void),
    }

    #[repr(C)]
    pub struct MetricObj {
        pub this: *mut c_void,
        pub vtable: &'static MetricVTable,
    }
}

crate::abi! {
    revision 1:
    /// Revision 1: the reference set's identity, so a metric can cache what it derives from it.
    #[repr(C)]
    pub struct MetricReferenceMethods {
        pub reference: extern "C" fn(*mut c_void, RStr<'_>, RStr<'_>) -> FfiResult<()>,
    }
}

crate::abi! {
    revision 2:
    /// Revision 2: the class labels of each batch, for metrics of class fidelity (CAS).
    #[repr(C)]
    pub struct MetricLabelMethods {
        /// `update` with the batch's int64 labels `[N]`, when its images have them.
        pub update_labelled: extern "C" fn(*mut c_void, TensorRef<'_>, ROption<TensorRef<'_>>, bool) -> FfiResult<()>,
    }
}

crate::abi! {
    revision 4:
    /// Revision 4: the images the generator was trained on, for the metrics that ask for them.
    #[repr(C)]
    pub struct MetricTrainingMethods {
        /// Whether the core should feed the training set (through `update_training`).
        pub wants_training_set: extern "C" fn(*const c_void) -> FfiResult<bool>,
        /// A batch of the training set: uint8 NCHW images and, when the data has them, labels.
        pub update_training: extern "C" fn(*mut c_void, TensorRef<'_>, ROption<TensorRef<'_>>) -> FfiResult<()>,
    }
}

/// The table: `size`, then one block per revision (only extended at the end).
#[repr(C)]
pub struct MetricVTable {
    pub size: usize,
    pub r0: MetricMethods,
    pub r1: MetricReferenceMethods,
    pub r2: MetricLabelMethods,
    pub r4: MetricTrainingMethods,
}

/// One computed value.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub value: f64,
    pub higher_is_better: bool,
}

impl Value {
    /// A value where higher is better (an accuracy, a likelihood).
    pub fn higher(name: impl Into<String>, value: f64) -> Self {
        Self { name: name.into(), value, higher_is_better: true }
    }
    /// A value where lower is better (a distance, an error).
    pub fn lower(name: impl Into<String>, value: f64) -> Self {
        Self { name: name.into(), value, higher_is_better: false }
    }
}

impl From<Value> for MetricValue {
    fn from(v: Value) -> Self {
        MetricValue { name: v.name.into(), value: v.value, higher_is_better: v.higher_is_better }
    }
}

impl From<MetricValue> for Value {
    fn from(m: MetricValue) -> Self {
        Value { name: m.name.into_string(), value: m.value, higher_is_better: m.higher_is_better }
    }
}

/// What a plugin implements to provide a metric.
pub trait MetricPlugin: Sized + Send + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Config: Serialize + DeserializeOwned + Default;

    fn create(config: Self::Config, env: BuildEnv) -> Result<Self>;
    fn reset(&mut self) -> Result<()>;
    fn update(&mut self, images: &Tensor, fake: bool) -> Result<()>;
    /// What the core calls (revision 2): `update` with the batch's class labels (int64 `[N]`):
    /// the reference set's own labels, the labels generated images were conditioned on; `None`
    /// when there are none. The default ignores them.
    fn update_labelled(&mut self, images: &Tensor, _labels: Option<&Tensor>, fake: bool) -> Result<()> {
        self.update(images, fake)
    }
    fn compute(&mut self) -> Result<Vec<Value>>;
    /// Before the first `update`: the reference set the core will feed as real images is `id`
    /// (dataset, split and count, e.g. `fashion-mnist-test-10000`), and what a metric derives
    /// from it alone (FID's statistics) may be cached under `cache_dir`, keyed by `id` and
    /// whatever else it depends on (the feature network).
    fn reference(&mut self, _id: &str, _cache_dir: &std::path::Path) -> Result<()> {
        Ok(())
    }
    /// JSON describing the evaluation protocol (feature network, its sha256, resize rule, ...).
    /// A top-level `"warning"` string is an alarm about the last evaluation: the core prints it
    /// once per run and removes it from the recorded protocol.
    fn protocol(&self) -> String {
        "{}".to_string()
    }
    /// Whether this metric needs the images the generator was trained on (revision 4): the
    /// run's training data after `data.fraction`, the same subset the model saw. Asked once,
    /// after `reference`; when true the core streams the set through `update_training` once,
    /// before the first evaluation, and the metric keeps what it needs across `reset`s.
    fn wants_training_set(&self) -> bool {
        false
    }
    /// A batch of the training set (uint8 NCHW on the run's device, int64 labels `[N]` when the
    /// data has classes).
    fn update_training(&mut self, _images: &Tensor, _labels: Option<&Tensor>) -> Result<()> {
        Ok(())
    }
}

extern "C" fn create_metric<P: MetricPlugin>(config: RStr<'_>, env: BuildEnv) -> FfiResult<MetricObj> {
    guard(|| {
        let config = crate::config::parse::<P::Config>(config.as_str())?;
        let plugin = P::create(config, env)?;
        Ok(MetricObj { this: Box::into_raw(Box::new(plugin)) as *mut c_void, vtable: &MetricGlue::<P>::VTABLE })
    })
}

struct MetricGlue<P>(std::marker::PhantomData<P>);

impl<P: MetricPlugin> MetricGlue<P> {
    const VTABLE: MetricVTable = MetricVTable {
        size: crate::library::table_size(
            crate::REVISION,
            &[
                std::mem::offset_of!(MetricVTable, r1),
                std::mem::offset_of!(MetricVTable, r2),
                // Revision 3 added nothing to metrics: its block is empty.
                std::mem::offset_of!(MetricVTable, r4),
                std::mem::offset_of!(MetricVTable, r4),
                std::mem::size_of::<MetricVTable>(),
            ],
        ),
        r0: MetricMethods {
            reset: Self::reset,
            update: Self::update,
            compute: Self::compute,
            protocol: Self::protocol,
            drop: Self::drop,
        },
        r1: MetricReferenceMethods { reference: Self::reference },
        r2: MetricLabelMethods { update_labelled: Self::update_labelled },
        r4: MetricTrainingMethods {
            wants_training_set: Self::wants_training_set,
            update_training: Self::update_training,
        },
    };

    fn this<'a>(this: *const c_void) -> &'a mut P {
        // SAFETY: `this` is the Box<P> from `create_metric`, alive until `drop`.
        unsafe { &mut *(this as *mut P) }
    }
    extern "C" fn reset(this: *mut c_void) -> FfiResult<()> {
        guard(|| Self::this(this).reset())
    }
    extern "C" fn update(this: *mut c_void, images: TensorRef<'_>, fake: bool) -> FfiResult<()> {
        guard(|| Self::this(this).update(&images.to_tensor(), fake))
    }
    extern "C" fn update_labelled(
        this: *mut c_void,
        images: TensorRef<'_>,
        labels: ROption<TensorRef<'_>>,
        fake: bool,
    ) -> FfiResult<()> {
        guard(|| {
            let labels = labels.into_option().map(|l| l.to_tensor());
            Self::this(this).update_labelled(&images.to_tensor(), labels.as_ref(), fake)
        })
    }
    extern "C" fn wants_training_set(this: *const c_void) -> FfiResult<bool> {
        guard(|| Ok(Self::this(this).wants_training_set()))
    }
    extern "C" fn update_training(
        this: *mut c_void,
        images: TensorRef<'_>,
        labels: ROption<TensorRef<'_>>,
    ) -> FfiResult<()> {
        guard(|| {
            let labels = labels.into_option().map(|l| l.to_tensor());
            Self::this(this).update_training(&images.to_tensor(), labels.as_ref())
        })
    }
    extern "C" fn compute(this: *mut c_void) -> FfiResult<RVec<MetricValue>> {
        guard(|| Ok(Self::this(this).compute()?.into_iter().map(MetricValue::from).collect()))
    }
    extern "C" fn reference(this: *mut c_void, id: RStr<'_>, cache_dir: RStr<'_>) -> FfiResult<()> {
        guard(|| Self::this(this).reference(id.as_str(), std::path::Path::new(cache_dir.as_str())))
    }
    extern "C" fn protocol(this: *const c_void) -> FfiResult<RString> {
        guard(|| Ok(Self::this(this).protocol().into()))
    }
    extern "C" fn drop(this: *mut c_void) {
        // SAFETY: called once, by the owning handle's Drop.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(this as *mut P) }));
    }
}

pub fn descriptor<P: MetricPlugin>(version: &str) -> PluginDescriptor {
    PluginDescriptor {
        name: P::NAME.into(),
        version: version.into(),
        description: P::DESCRIPTION.into(),
        default_config: crate::config::default_toml::<P::Config>().into(),
        factory: Factory::Metric(create_metric::<P>),
    }
}

/// A metric created from a plugin. The library must stay loaded while it lives.
pub struct Metric {
    obj: MetricObj,
}

impl Metric {
    /// # Safety
    /// `obj` must come from a loaded plugin's factory, and that library must outlive the handle.
    pub unsafe fn from_raw(obj: MetricObj) -> Self {
        Self { obj }
    }
    pub fn reset(&mut self) -> Result<()> {
        into_result((self.obj.vtable.r0.reset)(self.obj.this))
    }
    pub fn update(&mut self, images: &Tensor, fake: bool) -> Result<()> {
        into_result((self.obj.vtable.r0.update)(self.obj.this, TensorRef::new(images), fake))
    }
    /// A batch with its labels; for a plugin built before revision 2, `update` without them.
    pub fn update_labelled(&mut self, images: &Tensor, labels: Option<&Tensor>, fake: bool) -> Result<()> {
        let has =
            self.obj.vtable.size >= std::mem::offset_of!(MetricVTable, r2) + std::mem::size_of::<MetricLabelMethods>();
        if !has {
            return self.update(images, fake);
        }
        let labels = ROption::from(labels.map(TensorRef::new));
        into_result((self.obj.vtable.r2.update_labelled)(self.obj.this, TensorRef::new(images), labels, fake))
    }
    pub fn compute(&mut self) -> Result<Vec<Value>> {
        let v = into_result((self.obj.vtable.r0.compute)(self.obj.this))?;
        Ok(v.into_iter().map(Value::from).collect())
    }
    /// Tells the metric which reference set it will see (a no-op for plugins built before
    /// revision 1).
    pub fn reference(&mut self, id: &str, cache_dir: &std::path::Path) -> Result<()> {
        let has = self.obj.vtable.size
            >= std::mem::offset_of!(MetricVTable, r1) + std::mem::size_of::<MetricReferenceMethods>();
        if !has {
            return Ok(());
        }
        let dir = cache_dir.to_string_lossy();
        into_result((self.obj.vtable.r1.reference)(self.obj.this, id.into(), dir.as_ref().into()))
    }
    pub fn protocol(&self) -> Result<String> {
        into_result((self.obj.vtable.r0.protocol)(self.obj.this)).map(RString::into_string)
    }
    fn has_training_methods(&self) -> bool {
        self.obj.vtable.size >= std::mem::offset_of!(MetricVTable, r4) + std::mem::size_of::<MetricTrainingMethods>()
    }
    /// Whether the metric asks for the training set (never, for plugins built before revision 4).
    pub fn wants_training_set(&self) -> Result<bool> {
        if !self.has_training_methods() {
            return Ok(false);
        }
        into_result((self.obj.vtable.r4.wants_training_set)(self.obj.this))
    }
    /// A batch of the training set, for a metric that asked for it.
    pub fn update_training(&mut self, images: &Tensor, labels: Option<&Tensor>) -> Result<()> {
        if !self.has_training_methods() {
            return Ok(());
        }
        let labels = ROption::from(labels.map(TensorRef::new));
        into_result((self.obj.vtable.r4.update_training)(self.obj.this, TensorRef::new(images), labels))
    }
}

impl Drop for Metric {
    fn drop(&mut self) {
        guard_or((), || (self.obj.vtable.r0.drop)(self.obj.this))
    }
}
