//! Architecture plugins build named networks (`generator`, usually `discriminator`, and any
//! others a method needs: `encoder`, `q_head`, a second generator, ...). A network is
//! `forward(inputs, train) -> outputs` over tensor lists plus its named parameters and buffers,
//! which the core adopts: optimizers, EMA, device placement and checkpoints are core code.
//!
//! Each network's [`Spec`] names the phases in which its optimizer steps (`D`, `G`, or a name
//! from the loss's plan). An architecture may also own its latent sampler (structured codes,
//! one z per recurrent step) and the layout of its sample grid (traversals, reconstructions,
//! stages), through a [`VisualCtx`] the core implements, and measure itself at evaluation
//! steps (revision 3: a VAE's test ELBO, InfoGAN's code accuracy, an encoder's probe), through
//! an [`EvalCtx`] that lends the networks and the data splits.
use std::ffi::c_void;

use abi_stable::std_types::{ROption, RSlice, RStr, RString, RVec};
use serde::{de::DeserializeOwned, Serialize};
use tch::Tensor;

use crate::error::Result;
use crate::library::{guard, guard_or, into_result, BuildEnv, Factory, FfiResult, PluginDescriptor};
use crate::tensor::{give_all, refs, take_all, NamedTensor, OwnedTensor, TensorRef};

crate::abi! {
    #[repr(C)]
    pub struct NetworkSpec {
        pub name: RString,
        /// The phases in which its optimizer steps.
        pub phases: RVec<RString>,
    }

    #[repr(C)]
    pub struct ArchitectureInfo {
        pub z_dim: i64,
        /// Classes the networks are conditioned on; 0 for unconditional models (no label inputs).
        pub num_classes: i64,
        pub networks: RVec<NetworkSpec>,
    }

    /// A picture of the model: images in [-1, 1], NCHW, laid out `nrow` to a row.
    #[repr(C)]
    pub struct Grid {
        pub images: OwnedTensor,
        pub nrow: i64,
    }

    #[repr(C)]
    pub struct ArchitectureMethods {
        pub info: extern "C" fn(*const c_void) -> FfiResult<ArchitectureInfo>,
        pub build: extern "C" fn(*const c_void, RStr<'_>) -> FfiResult<NetworkObj>,
        /// `n` latents from the architecture's own sampler; None: the core draws N(0, I).
        pub sample_latent: extern "C" fn(*const c_void, i64) -> FfiResult<ROption<OwnedTensor>>,
        /// The architecture's own sample grid; None: the core's fixed-z grid.
        pub visualize: extern "C" fn(*const c_void, *const VisualContext) -> FfiResult<ROption<Grid>>,
        pub drop: extern "C" fn(*mut c_void),
    }

    #[repr(C)]
    pub struct ArchitectureObj {
        pub this: *mut c_void,
        pub vtable: &'static ArchitectureVTable,
    }

    #[repr(C)]
    pub struct NetworkMethods {
        pub forward: extern "C" fn(*mut c_void, RSlice<'_, TensorRef<'_>>, bool) -> FfiResult<RVec<OwnedTensor>>,
        /// Parameters (trainable) and buffers (not trainable), named with '.'-separated paths.
        pub tensors: extern "C" fn(*const c_void) -> FfiResult<RVec<NamedTensor>>,
        pub drop: extern "C" fn(*mut c_void),
    }

    #[repr(C)]
    pub struct NetworkObj {
        pub this: *mut c_void,
        pub vtable: &'static NetworkVTable,
    }
}

crate::abi! {
    revision 3:
    /// Revision 3: what a model measures about itself at evaluation steps.
    #[repr(C)]
    pub struct ArchitectureEvalMethods {
        /// The names of the values `evaluate` returns; empty when it measures nothing.
        pub measures: extern "C" fn(*const c_void) -> FfiResult<RVec<RString>>,
        pub evaluate: extern "C" fn(*const c_void, *const EvalContext) -> FfiResult<RVec<crate::metric::MetricValue>>,
    }
}

/// The architecture table: `size`, then one block per revision (only extended at the end).
#[repr(C)]
pub struct ArchitectureVTable {
    pub size: usize,
    pub r0: ArchitectureMethods,
    pub r3: ArchitectureEvalMethods,
}

/// The network table: `size`, then one block per revision (only extended at the end).
#[repr(C)]
pub struct NetworkVTable {
    pub size: usize,
    pub r0: NetworkMethods,
}

crate::host_context! {
    context VisualCtx / VisualHost / VisualContextVTable / VisualContext / VisualContextGlue / VISUAL_LAYOUT;
    /// Runs a network in eval mode without autograd; `generator` is the EMA generator when the
    /// run keeps one.
    fn run_network(name: str, inputs: tensors) -> tensors;
    /// The run's fixed latents (`log.samples` of them, the same at every grid).
    fn fixed_latent() -> tensor;
    /// Their labels (0, 1, 2, ... cycling) for conditional models.
    fn fixed_labels() -> opt_tensor;
    /// `n` fixed real images in [-1, 1] (the same ones at every grid of a run).
    fn real(n: i64) -> tensor;
    fn real_labels(n: i64) -> opt_tensor;
    /// `n` fixed images of the second domain, for two-domain data.
    fn real_b(n: i64) -> opt_tensor;
    /// `log.samples`: how many images a grid should hold, roughly.
    fn samples() -> i64;
    fn num_classes() -> i64;
}

crate::host_context! {
    context EvalCtx / EvalHost / EvalContextVTable / EvalContext / EvalContextGlue / EVAL_LAYOUT;
    /// Runs a network in eval mode without autograd; `generator` is the EMA generator when the
    /// run keeps one.
    fn run_network(name: str, inputs: tensors) -> tensors;
    /// Images in a split: `reference` (what the metrics compare against, `eval.reference`) or
    /// `train` (the run's training images).
    fn count(split: str) -> i64;
    /// `n` images of `split` from index `start`, as floats in [-1, 1], NCHW, on the run's device.
    fn images(split: str, start: i64, n: i64) -> tensor;
    /// Their class labels (int64), when the dataset has them.
    fn labels(split: str, start: i64, n: i64) -> opt_tensor;
    fn num_classes() -> i64;
}

/// The split a metric's reference images come from (`eval.reference`), for [`EvalCtx`].
pub const SPLIT_REFERENCE: &str = "reference";
/// The run's training images, for [`EvalCtx`].
pub const SPLIT_TRAIN: &str = "train";
/// The second domain of the reference split, for two-domain data (image-to-image translation):
/// aligned with [`SPLIT_REFERENCE`] when paired, its own images when unpaired.
pub const SPLIT_REFERENCE_B: &str = "reference_b";
/// The second domain of the run's training images, for two-domain data.
pub const SPLIT_TRAIN_B: &str = "train_b";

// ---------------------------------------------------------------------------------------------
// Plugin side

/// A network spec as plugin code writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    /// The phases in which its optimizer steps; empty for a network that is never trained
    /// (a fixed feature extractor).
    pub phases: Vec<String>,
}

impl Spec {
    pub fn new(name: &str, phases: &[&str]) -> Self {
        Self { name: name.to_string(), phases: phases.iter().map(|p| p.to_string()).collect() }
    }
}

/// The plugin side of the visualisation context.
pub struct VisualCtx<'a> {
    raw: &'a VisualContext,
}

/// The plugin side of the evaluation context.
pub struct EvalCtx<'a> {
    raw: &'a EvalContext,
}

impl EvalCtx<'_> {
    /// Calls `f(images, labels)` on consecutive batches of up to `batch` images of `split`,
    /// the first `limit` of them (all of them when `limit` is 0).
    pub fn for_each_batch(
        &self,
        split: &str,
        batch: i64,
        limit: i64,
        mut f: impl FnMut(Tensor, Option<Tensor>) -> Result<()>,
    ) -> Result<()> {
        let count = self.count(split)?;
        let total = if limit > 0 { limit.min(count) } else { count };
        let mut start = 0;
        while start < total {
            let n = batch.max(1).min(total - start);
            f(self.images(split, start, n)?, self.labels(split, start, n)?)?;
            start += n;
        }
        Ok(())
    }
}

/// What a plugin implements to provide an architecture.
pub trait ArchitecturePlugin: Sized + Send + 'static {
    /// The name users write as `model.architecture`.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// Parsed from `[model.config]` with unknown keys refused; `Default` is the documented default.
    type Config: Serialize + DeserializeOwned + Default;

    fn create(config: Self::Config, env: BuildEnv) -> Result<Self>;
    /// The width of the latents the generator takes (of the noise part, for structured ones).
    fn z_dim(&self) -> i64;
    /// Classes the networks take as a label input (`[z, y]`, `[x, y]`); 0 when unconditional.
    fn num_classes(&self) -> i64 {
        0
    }
    /// Every network this architecture can build, and when each is optimised.
    fn networks(&self) -> Vec<Spec>;
    /// Builds a fresh network with freshly initialised weights (the core builds `generator`
    /// twice: once to train, once for its EMA).
    fn build(&self, name: &str) -> Result<Box<dyn Network>>;
    /// `n` latents for the generator's first input, drawn with libtorch's RNG (the core seeds
    /// it). `None`: N(0, I) of width `z_dim`.
    fn sample_latent(&self, _n: i64) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// The architecture's own sample grid: `(images in [-1, 1], images per row)`. `None`: the
    /// core's grid of the generator on the fixed latents.
    fn visualize(&self, _ctx: &VisualCtx<'_>) -> Result<Option<(Tensor, i64)>> {
        Ok(None)
    }
    /// The names of the values [`evaluate`](Self::evaluate) returns (revision 3). When it is
    /// not empty the core evaluates the model at every evaluation step (`eval.every`, and at
    /// the end), logging each value as `eval/<name>`, even with no metric plugins configured.
    fn measures(&self) -> Vec<String> {
        Vec::new()
    }
    /// What the model measures about itself: test-set likelihoods, how well a learned code or
    /// encoder classifies, reconstructions' error. The core seeds libtorch first, so draws are
    /// reproducible.
    fn evaluate(&self, _ctx: &EvalCtx<'_>) -> Result<Vec<crate::Value>> {
        Ok(Vec::new())
    }
}

/// One network, as plugin code implements it.
pub trait Network: Send {
    fn forward(&mut self, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>>;
    /// `(name, tensor, trainable)` for every parameter and buffer; tensors are shared, not copied.
    fn tensors(&self) -> Vec<(String, Tensor, bool)>;
}

/// A network whose state lives in a `tch` VarStore and whose forward is a closure.
pub struct VarStoreNetwork<F> {
    pub vs: tch::nn::VarStore,
    pub forward: F,
}

impl<F> Network for VarStoreNetwork<F>
where
    F: FnMut(&[Tensor], bool) -> Result<Vec<Tensor>> + Send,
{
    fn forward(&mut self, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        (self.forward)(inputs, train)
    }

    fn tensors(&self) -> Vec<(String, Tensor, bool)> {
        let mut named: Vec<_> = self.vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
            .into_iter()
            .map(|(name, t)| {
                let trainable = t.requires_grad();
                (name, t, trainable)
            })
            .collect()
    }
}

extern "C" fn create_architecture<P: ArchitecturePlugin>(
    config: RStr<'_>,
    env: BuildEnv,
) -> FfiResult<ArchitectureObj> {
    guard(|| {
        let config = crate::config::parse::<P::Config>(config.as_str())?;
        let plugin = P::create(config, env)?;
        Ok(ArchitectureObj {
            this: Box::into_raw(Box::new(plugin)) as *mut c_void,
            vtable: &ArchitectureGlue::<P>::VTABLE,
        })
    })
}

struct ArchitectureGlue<P>(std::marker::PhantomData<P>);

impl<P: ArchitecturePlugin> ArchitectureGlue<P> {
    const VTABLE: ArchitectureVTable = ArchitectureVTable {
        size: crate::library::table_size(crate::REVISION, &{
            let r0 = std::mem::offset_of!(ArchitectureVTable, r3);
            [r0, r0, r0, std::mem::size_of::<ArchitectureVTable>()]
        }),
        r0: ArchitectureMethods {
            info: Self::info,
            build: Self::build,
            sample_latent: Self::sample_latent,
            visualize: Self::visualize,
            drop: Self::drop,
        },
        r3: ArchitectureEvalMethods { measures: Self::measures, evaluate: Self::evaluate },
    };

    fn this<'a>(this: *const c_void) -> &'a P {
        // SAFETY: `this` is the Box<P> made in `create_architecture`, alive until `drop`.
        unsafe { &*(this as *const P) }
    }

    extern "C" fn info(this: *const c_void) -> FfiResult<ArchitectureInfo> {
        guard(|| {
            let p = Self::this(this);
            let networks = p
                .networks()
                .into_iter()
                .map(|s| NetworkSpec { name: s.name.into(), phases: s.phases.into_iter().map(RString::from).collect() })
                .collect();
            Ok(ArchitectureInfo { z_dim: p.z_dim(), num_classes: p.num_classes(), networks })
        })
    }

    extern "C" fn build(this: *const c_void, name: RStr<'_>) -> FfiResult<NetworkObj> {
        guard(|| {
            let net = Self::this(this).build(name.as_str())?;
            Ok(NetworkObj { this: Box::into_raw(Box::new(net)) as *mut c_void, vtable: &NETWORK_VTABLE })
        })
    }

    extern "C" fn sample_latent(this: *const c_void, n: i64) -> FfiResult<ROption<OwnedTensor>> {
        guard(|| Ok(Self::this(this).sample_latent(n)?.map(OwnedTensor::new).into()))
    }

    extern "C" fn visualize(this: *const c_void, ctx: *const VisualContext) -> FfiResult<ROption<Grid>> {
        guard(|| {
            // SAFETY: `ctx` is valid for this call.
            let ctx = VisualCtx { raw: unsafe { &*ctx } };
            let grid = Self::this(this).visualize(&ctx)?;
            Ok(grid.map(|(images, nrow)| Grid { images: OwnedTensor::new(images), nrow }).into())
        })
    }

    extern "C" fn measures(this: *const c_void) -> FfiResult<RVec<RString>> {
        guard(|| Ok(Self::this(this).measures().into_iter().map(RString::from).collect()))
    }

    extern "C" fn evaluate(
        this: *const c_void,
        ctx: *const EvalContext,
    ) -> FfiResult<RVec<crate::metric::MetricValue>> {
        guard(|| {
            // SAFETY: `ctx` is valid for this call.
            let ctx = EvalCtx { raw: unsafe { &*ctx } };
            let values = Self::this(this).evaluate(&ctx)?;
            Ok(values.into_iter().map(crate::metric::MetricValue::from).collect())
        })
    }

    extern "C" fn drop(this: *mut c_void) {
        // SAFETY: called once, by the owning handle's Drop.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(this as *mut P) }));
    }
}

static NETWORK_VTABLE: NetworkVTable = NetworkVTable {
    size: std::mem::size_of::<NetworkVTable>(),
    r0: NetworkMethods { forward: network_forward, tensors: network_tensors, drop: network_drop },
};

fn network<'a>(this: *const c_void) -> &'a mut Box<dyn Network> {
    // SAFETY: `this` is the Box<Box<dyn Network>> made in `build`, alive until `drop`; the host
    // handle takes `&mut self` for forward, so there is no aliasing.
    unsafe { &mut *(this as *mut Box<dyn Network>) }
}

extern "C" fn network_forward(
    this: *mut c_void,
    inputs: RSlice<'_, TensorRef<'_>>,
    train: bool,
) -> FfiResult<RVec<OwnedTensor>> {
    guard(|| {
        let inputs: Vec<Tensor> = inputs.iter().map(TensorRef::to_tensor).collect();
        Ok(give_all(network(this).forward(&inputs, train)?))
    })
}

extern "C" fn network_tensors(this: *const c_void) -> FfiResult<RVec<NamedTensor>> {
    guard(|| {
        Ok(network(this)
            .tensors()
            .into_iter()
            .map(|(name, t, trainable)| NamedTensor::new(name, t, trainable))
            .collect())
    })
}

extern "C" fn network_drop(this: *mut c_void) {
    // SAFETY: called once, by the owning handle's Drop.
    let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(this as *mut Box<dyn Network>) }));
}

/// The descriptor [`export_plugins!`](crate::export_plugins) registers for `P`.
pub fn descriptor<P: ArchitecturePlugin>(version: &str) -> PluginDescriptor {
    PluginDescriptor {
        name: P::NAME.into(),
        version: version.into(),
        description: P::DESCRIPTION.into(),
        default_config: crate::config::default_toml::<P::Config>().into(),
        factory: Factory::Architecture(create_architecture::<P>),
    }
}

// ---------------------------------------------------------------------------------------------
// Core side

/// What an architecture declares, as the core reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub z_dim: i64,
    pub num_classes: i64,
    pub networks: Vec<Spec>,
}

/// An architecture created from a plugin. The library must stay loaded while it lives.
pub struct Architecture {
    obj: ArchitectureObj,
}

impl Architecture {
    /// # Safety
    /// `obj` must come from a loaded plugin's factory, and that library must outlive the handle.
    pub unsafe fn from_raw(obj: ArchitectureObj) -> Self {
        Self { obj }
    }

    pub fn info(&self) -> Result<Info> {
        let info = into_result((self.obj.vtable.r0.info)(self.obj.this))?;
        let networks = info
            .networks
            .into_iter()
            .map(|s| Spec {
                name: s.name.into_string(),
                phases: s.phases.into_iter().map(RString::into_string).collect(),
            })
            .collect();
        Ok(Info { z_dim: info.z_dim, num_classes: info.num_classes, networks })
    }

    pub fn build(&self, name: &str) -> Result<NetworkHandle> {
        let obj = into_result((self.obj.vtable.r0.build)(self.obj.this, name.into()))?;
        Ok(NetworkHandle { obj })
    }

    /// The architecture's own latents, if it has a sampler.
    pub fn sample_latent(&self, n: i64) -> Result<Option<Tensor>> {
        let r = into_result((self.obj.vtable.r0.sample_latent)(self.obj.this, n))?;
        Ok(r.into_option().map(OwnedTensor::into_tensor))
    }

    fn has_eval_methods(&self) -> bool {
        self.obj.vtable.size
            >= std::mem::offset_of!(ArchitectureVTable, r3) + std::mem::size_of::<ArchitectureEvalMethods>()
    }

    /// What the model measures about itself; empty for a plugin built before revision 3.
    pub fn measures(&self) -> Result<Vec<String>> {
        if !self.has_eval_methods() {
            return Ok(Vec::new());
        }
        let names = into_result((self.obj.vtable.r3.measures)(self.obj.this))?;
        Ok(names.into_iter().map(RString::into_string).collect())
    }

    /// The model's own measures, through `host`.
    pub fn evaluate(&self, host: &mut dyn EvalHost) -> Result<Vec<crate::Value>> {
        if !self.has_eval_methods() {
            return Ok(Vec::new());
        }
        let f = self.obj.vtable.r3.evaluate;
        let this = self.obj.this;
        let values = EvalContextGlue::with(host, |ctx| into_result(f(this, ctx)))?;
        Ok(values.into_iter().map(crate::Value::from).collect())
    }

    /// The architecture's own grid, if it draws one.
    pub fn visualize(&self, host: &mut dyn VisualHost) -> Result<Option<(Tensor, i64)>> {
        let f = self.obj.vtable.r0.visualize;
        let this = self.obj.this;
        let grid = VisualContextGlue::with(host, |ctx| into_result(f(this, ctx)))?;
        Ok(grid.into_option().map(|g| (g.images.into_tensor(), g.nrow)))
    }
}

impl Drop for Architecture {
    fn drop(&mut self) {
        guard_or((), || (self.obj.vtable.r0.drop)(self.obj.this))
    }
}

/// A network living in a plugin, called from the core.
pub struct NetworkHandle {
    obj: NetworkObj,
}

impl NetworkHandle {
    pub fn forward(&mut self, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        let lent = refs(inputs);
        let out = (self.obj.vtable.r0.forward)(self.obj.this, lent.as_slice().into(), train);
        into_result(out).map(take_all)
    }

    /// `(name, tensor, trainable)`; the tensors share storage with the plugin's.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor, bool)>> {
        let named = into_result((self.obj.vtable.r0.tensors)(self.obj.this))?;
        Ok(named.into_iter().map(|n| (n.name.into_string(), n.tensor.into_tensor(), n.trainable)).collect())
    }
}

impl Drop for NetworkHandle {
    fn drop(&mut self) {
        guard_or((), || (self.obj.vtable.r0.drop)(self.obj.this))
    }
}
