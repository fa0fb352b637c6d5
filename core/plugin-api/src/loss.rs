//! Loss (objective) plugins. An objective declares the phases it trains in (its *plan*; the
//! default is `D` × `train.d_steps`, then `G`) and, for each phase, returns one loss per group
//! of networks through a [`LossCtx`] the core implements. The core back-propagates each group's
//! loss into that group's parameters only and steps their optimizers. A loss may keep state
//! (`state` / `load_state`, checkpointed with the run). See the crate docs for how each system
//! of the zoo is written against it.
use std::ffi::c_void;

use abi_stable::std_types::{ROption, RStr, RString, RVec};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::library::{guard, guard_or, into_result, BuildEnv, Factory, FfiResult, PluginDescriptor};
use crate::tensor::OwnedTensor;

/// The discriminator phase of the default plan.
pub const PHASE_D: &str = "D";
/// The generator phase of the default plan.
pub const PHASE_G: &str = "G";

crate::abi! {
    /// What a batch given to the discriminator is, so the core can track D(x), D(G(z)) and feed
    /// adaptive augmentation.
    #[repr(u32)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Role {
        Real = 0,
        Fake = 1,
        Other = 2,
    }

    /// One phase of a plan, as it crosses the boundary (see [`PhasePlan`]).
    #[repr(C)]
    pub struct PhaseSpec {
        pub name: RString,
        pub networks: RVec<RString>,
        pub every: u64,
        pub lazy: bool,
        pub repeat: u32,
        pub boost_repeat: u32,
        pub boost_first: u64,
        pub boost_every: u64,
        pub batch_size: i64,
    }

    /// The loss of one group of networks; `loss` is None when the group skips this step.
    #[repr(C)]
    pub struct GroupLoss {
        pub networks: RVec<RString>,
        pub loss: ROption<OwnedTensor>,
    }

    /// Revision 0 of the loss table.
    #[repr(C)]
    pub struct LossMethods {
        pub plan: extern "C" fn(*const c_void) -> FfiResult<RVec<PhaseSpec>>,
        pub loss: extern "C" fn(*mut c_void, RStr<'_>, *const LossContext) -> FfiResult<RVec<GroupLoss>>,
        pub drop: extern "C" fn(*mut c_void),
    }

    #[repr(C)]
    pub struct LossObj {
        pub this: *mut c_void,
        pub vtable: &'static LossVTable,
    }
}

crate::abi! {
    revision 1:
    /// Revision 1: checkpointed loss state (BEGAN's k_t, path-length means, image pools).
    #[repr(C)]
    pub struct LossStateMethods {
        pub state: extern "C" fn(*const c_void) -> FfiResult<RString>,
        pub load_state: extern "C" fn(*mut c_void, RStr<'_>) -> FfiResult<()>,
    }
}

/// The loss table: `size` (as its plugin compiled it), then one block per interface revision.
/// Only ever extended at the end, so it is not part of the fingerprint; its blocks are.
#[repr(C)]
pub struct LossVTable {
    pub size: usize,
    pub r0: LossMethods,
    pub r1: LossStateMethods,
}

crate::host_context! {
    context LossCtx / LossHost / LossContextVTable / LossContext / LossContextGlue / CONTEXT_LAYOUT;
    /// The phase being computed: `D`, `G`, or a name from the loss's plan.
    fn phase() -> string;
    /// The generator step being computed (0-based).
    fn step() -> u64;
    /// Which run of the phase within this step (0-based; `D` repeats `train.d_steps` times).
    fn repeat_index() -> u64;
    fn batch_size() -> i64;
    /// 0 for unconditional models.
    fn num_classes() -> i64;
    /// Whether this phase steps the network `name`.
    fn steps_network(name: str) -> bool;
    /// The real batch, as floats in [-1, 1], NCHW, on the run's device. Not augmented.
    fn real() -> tensor;
    /// The real batch's class labels (int64), when the model is conditional.
    fn real_labels() -> opt_tensor;
    /// The second domain's batch for two-domain data (aligned with `real` when paired).
    fn real_b() -> opt_tensor;
    /// `n` latents from the architecture's sampler (N(0, I) unless it has its own), seeded.
    fn sample_z(n: i64) -> tensor;
    /// `n` uniformly drawn labels for conditional models, `None` otherwise.
    fn sample_labels(n: i64) -> opt_tensor;
    /// Runs the generator; without autograd history when this phase does not step it.
    fn generate(z: tensor, labels: opt_tensor) -> tensor;
    /// Runs the discriminator on `x`, applying the run's augmentation first when `augment` is
    /// set (fresh random parameters on every call). Returns all of D's outputs; the first is
    /// the logit.
    fn discriminate(x: tensor, labels: opt_tensor, augment: bool, role: Role) -> tensors;
    /// Applies the run's augmentation (fresh random parameters), differentiably.
    fn augment(x: tensor) -> tensor;
    /// Runs any network the architecture declares, e.g. `encoder` or `q_head`.
    fn run_network(name: str, inputs: tensors, train: bool) -> tensors;
    /// Logs a scalar (a tensor, averaged; the core reads it only at logging steps: no sync).
    fn log_scalar(name: str, value: tensor) -> unit;
}

// ---------------------------------------------------------------------------------------------
// Plugin side

/// One phase of a training plan (stylegan2-ada's phases are the model). Also what
/// `[[train.phases]]` in an experiment holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhasePlan {
    /// `D`, `G`, or any name the loss answers to (`D_reg`, `G_pl`, `E`, ...).
    pub name: String,
    /// The networks whose optimizers step in this phase. Empty: every network whose
    /// architecture spec lists this phase's name.
    pub networks: Vec<String>,
    /// Runs on steps 0, every, 2·every, ...
    pub every: u64,
    /// Lazy regularisation: the networks of a phase with `every = N > 1` get their learning
    /// rate × N/(N+1) and betas ^ N/(N+1) (stylegan2-ada), for all their phases.
    pub lazy: bool,
    /// Runs per step; 0 means `train.d_steps`.
    pub repeat: u32,
    /// A burst of `boost_repeat` runs on the first `boost_first` steps and every
    /// `boost_every`-th step (WGAN: 100 critic steps for the first 25 and every 500th).
    pub boost_repeat: u32,
    pub boost_first: u64,
    pub boost_every: u64,
    /// The batch size of this phase; 0 means `train.batch_size` (SNGAN: G 128, D 64).
    pub batch_size: i64,
}

impl Default for PhasePlan {
    fn default() -> Self {
        Self {
            name: String::new(),
            networks: Vec::new(),
            every: 1,
            lazy: false,
            repeat: 1,
            boost_repeat: 0,
            boost_first: 0,
            boost_every: 0,
            batch_size: 0,
        }
    }
}

impl PhasePlan {
    /// A phase that runs once every step and steps the networks whose spec lists `name`.
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), ..Self::default() }
    }

    /// The default plan: `D` × `train.d_steps`, then `G`.
    pub fn default_plan() -> Vec<PhasePlan> {
        vec![PhasePlan { repeat: 0, ..PhasePlan::new(PHASE_D) }, PhasePlan::new(PHASE_G)]
    }

    /// Whether the phase runs at generator step `step`.
    pub fn runs_at(&self, step: u64) -> bool {
        self.every <= 1 || step.is_multiple_of(self.every)
    }

    /// How many times it runs at `step`, given `train.d_steps`.
    pub fn repeats_at(&self, step: u64, d_steps: u32) -> u32 {
        let boosted = self.boost_repeat > 0
            && (step < self.boost_first || (self.boost_every > 0 && step.is_multiple_of(self.boost_every)));
        if boosted {
            self.boost_repeat
        } else if self.repeat == 0 {
            d_steps
        } else {
            self.repeat
        }
    }

    fn to_ffi(&self) -> PhaseSpec {
        PhaseSpec {
            name: self.name.as_str().into(),
            networks: self.networks.iter().map(|n| RString::from(n.as_str())).collect(),
            every: self.every,
            lazy: self.lazy,
            repeat: self.repeat,
            boost_repeat: self.boost_repeat,
            boost_first: self.boost_first,
            boost_every: self.boost_every,
            batch_size: self.batch_size,
        }
    }

    fn from_ffi(s: PhaseSpec) -> Self {
        Self {
            name: s.name.into_string(),
            networks: s.networks.into_iter().map(RString::into_string).collect(),
            every: s.every,
            lazy: s.lazy,
            repeat: s.repeat,
            boost_repeat: s.boost_repeat,
            boost_first: s.boost_first,
            boost_every: s.boost_every,
            batch_size: s.batch_size,
        }
    }
}

/// What a phase's loss call returns: one loss per group of networks.
#[derive(Default)]
pub struct Losses {
    /// `(networks, loss)`; no networks = every network the phase steps; no loss = skip.
    pub groups: Vec<(Vec<String>, Option<Tensor>)>,
}

impl Losses {
    /// One loss minimised by every network the phase steps (the classic case).
    pub fn all(loss: Tensor) -> Self {
        Self { groups: vec![(Vec::new(), Some(loss))] }
    }

    pub fn new() -> Self {
        Self::default()
    }

    /// `network` minimises `loss` (only its parameters receive the gradient).
    pub fn add(self, network: &str, loss: Tensor) -> Self {
        self.group(&[network], loss)
    }

    /// Every network of `networks` minimises `loss`.
    pub fn group(mut self, networks: &[&str], loss: Tensor) -> Self {
        self.groups.push((networks.iter().map(|s| s.to_string()).collect(), Some(loss)));
        self
    }

    /// `network` does not step on this iteration (VAE-GAN's equilibrium gating).
    pub fn skip(mut self, network: &str) -> Self {
        self.groups.push((vec![network.to_string()], None));
        self
    }
}

/// What a plugin implements to provide a loss.
pub trait LossPlugin: Sized + Send + 'static {
    /// The name users write as `loss.name`.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Config: Serialize + DeserializeOwned + Default;

    fn create(config: Self::Config, env: BuildEnv) -> Result<Self>;

    /// The phases this objective trains in. Empty (the default): `D` × `train.d_steps`, then `G`.
    fn plan(&self) -> Vec<PhasePlan> {
        Vec::new()
    }

    /// The losses of one run of `phase`. The default answers `D` with [`Self::d_loss`] and `G`
    /// with [`Self::g_loss`], each minimised by every network the phase steps.
    fn loss(&mut self, phase: &str, ctx: &mut LossCtx<'_>) -> Result<Losses> {
        match phase {
            PHASE_D => Ok(Losses::all(self.d_loss(ctx)?)),
            PHASE_G => Ok(Losses::all(self.g_loss(ctx)?)),
            other => Err(Error::new(format!("loss `{}` has no phase `{other}` (it has D and G)", Self::NAME))),
        }
    }

    /// The loss the discriminator-phase networks minimise.
    fn d_loss(&mut self, _ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        Err(Error::new(format!("loss `{}` implements neither `loss` nor `d_loss`", Self::NAME)))
    }

    /// The loss the generator-phase networks minimise.
    fn g_loss(&mut self, _ctx: &mut LossCtx<'_>) -> Result<Tensor> {
        Err(Error::new(format!("loss `{}` implements neither `loss` nor `g_loss`", Self::NAME)))
    }

    /// State to checkpoint, as text (JSON by convention); empty for a stateless loss.
    fn state(&self) -> Result<String> {
        Ok(String::new())
    }

    /// Restores what [`Self::state`] returned.
    fn load_state(&mut self, _state: &str) -> Result<()> {
        Ok(())
    }
}

/// The core's services, as loss plugin code sees them.
pub struct LossCtx<'a> {
    raw: &'a LossContext,
    fake: Option<(Tensor, Option<Tensor>)>,
}

impl<'a> LossCtx<'a> {
    /// One fake batch of `batch_size` (and its labels), generated once per loss call and reused.
    pub fn fake(&mut self) -> Result<(Tensor, Option<Tensor>)> {
        if self.fake.is_none() {
            let n = self.batch_size()?;
            let z = self.sample_z(n)?;
            let y = self.sample_labels(n)?;
            let x = self.generate(&z, y.as_ref())?;
            self.fake = Some((x, y));
        }
        let (x, y) = self.fake.as_ref().expect("just set");
        Ok((x.shallow_clone(), y.as_ref().map(Tensor::shallow_clone)))
    }

    /// D's logit on the (augmented) real batch.
    pub fn d_real(&self) -> Result<Tensor> {
        let (x, y) = (self.real()?, self.real_labels()?);
        Ok(self.discriminate(&x, y.as_ref(), true, Role::Real)?.swap_remove(0))
    }

    /// D's logit on the (augmented) shared fake batch.
    pub fn d_fake(&mut self) -> Result<Tensor> {
        let (x, y) = self.fake()?;
        Ok(self.discriminate(&x, y.as_ref(), true, Role::Fake)?.swap_remove(0))
    }

    /// Logs a scalar; a logging failure never fails the step.
    pub fn log(&self, name: &str, value: &Tensor) {
        let _ = self.log_scalar(name, value);
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
    const VTABLE: LossVTable = LossVTable {
        // A plugin built for an earlier revision hands over a table that ends before the later
        // blocks; the core reads `size` to know.
        size: crate::library::table_size(
            crate::REVISION,
            &[std::mem::offset_of!(LossVTable, r1), std::mem::size_of::<LossVTable>()],
        ),
        r0: LossMethods { plan: Self::plan, loss: Self::loss, drop: Self::drop },
        r1: LossStateMethods { state: Self::state, load_state: Self::load_state },
    };

    fn this<'b>(this: *const c_void) -> &'b mut P {
        // SAFETY: `this` is the Box<P> from `create_loss`, alive until `drop`; the host handle
        // takes `&mut self` for mutating calls.
        unsafe { &mut *(this as *mut P) }
    }

    extern "C" fn plan(this: *const c_void) -> FfiResult<RVec<PhaseSpec>> {
        guard(|| Ok(Self::this(this).plan().iter().map(PhasePlan::to_ffi).collect()))
    }

    extern "C" fn loss(this: *mut c_void, phase: RStr<'_>, ctx: *const LossContext) -> FfiResult<RVec<GroupLoss>> {
        guard(|| {
            // SAFETY: `ctx` is valid for this call.
            let mut ctx = LossCtx { raw: unsafe { &*ctx }, fake: None };
            let losses = Self::this(this).loss(phase.as_str(), &mut ctx)?;
            Ok(losses
                .groups
                .into_iter()
                .map(|(networks, loss)| GroupLoss {
                    networks: networks.into_iter().map(RString::from).collect(),
                    loss: loss.map(OwnedTensor::new).into(),
                })
                .collect())
        })
    }

    extern "C" fn state(this: *const c_void) -> FfiResult<RString> {
        guard(|| Self::this(this).state().map(RString::from))
    }

    extern "C" fn load_state(this: *mut c_void, state: RStr<'_>) -> FfiResult<()> {
        guard(|| Self::this(this).load_state(state.as_str()))
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

/// A loss created from a plugin. The library must stay loaded while it lives.
pub struct Loss {
    obj: LossObj,
}

/// One group's loss, as the core receives it: `(networks, loss)`, see [`Losses::groups`].
pub type Group = (Vec<String>, Option<Tensor>);

impl Loss {
    /// # Safety
    /// `obj` must come from a loaded plugin's factory, and that library must outlive the handle.
    pub unsafe fn from_raw(obj: LossObj) -> Self {
        Self { obj }
    }

    /// The loss's own plan; empty means the default plan.
    pub fn plan(&self) -> Result<Vec<PhasePlan>> {
        let specs = into_result((self.obj.vtable.r0.plan)(self.obj.this))?;
        Ok(specs.into_iter().map(PhasePlan::from_ffi).collect())
    }

    /// The groups' losses of one run of `phase`, with the core's services from `host`.
    pub fn loss(&mut self, phase: &str, host: &mut dyn LossHost) -> Result<Vec<Group>> {
        let f = self.obj.vtable.r0.loss;
        let this = self.obj.this;
        let groups = LossContextGlue::with(host, |ctx| into_result(f(this, phase.into(), ctx)))?;
        Ok(groups
            .into_iter()
            .map(|g| {
                (
                    g.networks.into_iter().map(RString::into_string).collect(),
                    g.loss.into_option().map(OwnedTensor::into_tensor),
                )
            })
            .collect())
    }

    /// Whether the plugin has revision 1's state methods (built for interface 2.1 or later).
    pub fn has_state_methods(&self) -> bool {
        self.obj.vtable.size >= std::mem::offset_of!(LossVTable, r1) + std::mem::size_of::<LossStateMethods>()
    }

    /// The state to checkpoint; empty for stateless losses and plugins that predate it.
    pub fn state(&self) -> Result<String> {
        if !self.has_state_methods() {
            return Ok(String::new());
        }
        into_result((self.obj.vtable.r1.state)(self.obj.this)).map(RString::into_string)
    }

    pub fn load_state(&mut self, state: &str) -> Result<()> {
        if !self.has_state_methods() {
            return Ok(());
        }
        into_result((self.obj.vtable.r1.load_state)(self.obj.this, state.into()))
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        guard_or((), || (self.obj.vtable.r0.drop)(self.obj.this))
    }
}
