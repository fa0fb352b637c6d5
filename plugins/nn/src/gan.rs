//! The plumbing of a GAN architecture plugin: one generator, stepped in the G phase, and one
//! discriminator, stepped in the D phase, each in its own VarStore, both taking the core's
//! input convention (`[z]` or `[z, labels]`, `[x]` or `[x, labels]`). Architectures provide
//! the two networks as pure computations on checked inputs; this module declares them to the
//! core, builds them by name and checks every input before they see it, so a wrong shape is a
//! one-line error naming the plugin, the network and the expected shape.
use lab_plugin_api::inputs;
use lab_plugin_api::tch::{nn, Device, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Network, Spec, VarStoreNetwork, PHASE_D, PHASE_G};
use serde::{de::DeserializeOwned, Serialize};

/// The network names a GAN architecture answers to, in the order `lab plugins` lists them.
pub const NETWORKS: [&str; 2] = [GENERATOR, DISCRIMINATOR];
pub const GENERATOR: &str = "generator";
pub const DISCRIMINATOR: &str = "discriminator";

/// A generator, with its inputs already checked.
pub trait Generator: Send + 'static {
    /// Images `[N, C, H, W]` in [-1, 1] from z `[N, z_dim]` and, for a conditional
    /// architecture, labels (int64 `[N]`).
    fn generate(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor;
    /// Everything the generator network returns: the images first, then whatever a loss may
    /// read through `run_network` (StyleGAN2's intermediate latents w, for path-length
    /// regularisation). The default is the images alone.
    fn generate_outputs(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Vec<Tensor> {
        vec![self.generate(z, labels, train)]
    }
}

/// A `tch` sequential stack is a generator: z `[N, z_dim]` in, images out (`[N, C, H, W]`, or
/// flat `[N, C·H·W]`, which [`build`] reshapes). Unconditional only: labels are ignored.
impl Generator for nn::SequentialT {
    fn generate(&self, z: &Tensor, _labels: Option<&Tensor>, train: bool) -> Tensor {
        nn::ModuleT::forward_t(self, z, train)
    }
}

/// A discriminator, with its inputs already checked.
pub trait Discriminator: Send + 'static {
    /// `(logits [N], features [N, F])` for images `[N, C, H, W]` and, for a conditional
    /// architecture, labels (int64 `[N]`). `features` is what the logits are computed from,
    /// for losses and heads that read it.
    fn discriminate(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> (Tensor, Tensor);
}

/// The common discriminator shape: a `body` from images to features `[N, F]` and a `head` from
/// features to one logit per image. Unconditional only: labels are ignored.
#[derive(Debug)]
pub struct Critic {
    pub body: nn::SequentialT,
    pub head: nn::Linear,
}

impl Critic {
    pub fn new(body: nn::SequentialT, head: nn::Linear) -> Self {
        Self { body, head }
    }
}

impl Discriminator for Critic {
    fn discriminate(&self, x: &Tensor, _labels: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let features = nn::ModuleT::forward_t(&self.body, x, train).flatten(1, -1);
        (nn::Module::forward(&self.head, &features).view([-1]), features)
    }
}

/// What the networks of an architecture accept, as resolved from its config and the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shapes {
    /// The length of z. The generator also accepts z as `[N, z_dim, 1, 1]`.
    pub z_dim: i64,
    /// `[channels, height, width]` of the images the discriminator accepts.
    pub image: [i64; 3],
    /// Whether both networks take labels. An unconditional network ignores labels it is given.
    pub conditional: bool,
}

impl Shapes {
    /// Square `resolution`×`resolution` images with `channels` channels; conditional when the
    /// config names a number of classes.
    pub fn square(z_dim: i64, channels: i64, resolution: i64, classes: Option<i64>) -> Self {
        Self { z_dim, image: [channels, resolution, resolution], conditional: classes.is_some() }
    }

    /// Unconditional networks for images shaped like `data`.
    pub fn of(z_dim: i64, data: &DataSpec) -> Self {
        Self { z_dim, image: [data.channels, data.height, data.width], conditional: false }
    }

    /// Values per image, C·H·W: the width of a fully connected layer that reads or writes one.
    pub fn pixels(&self) -> i64 {
        self.image.iter().product()
    }
}

/// What `ArchitecturePlugin::networks` returns for a GAN.
pub fn networks() -> Vec<Spec> {
    vec![Spec::new(GENERATOR, &[PHASE_G]), Spec::new(DISCRIMINATOR, &[PHASE_D])]
}

/// What `ArchitecturePlugin::build` returns for a GAN: the network called `name`, built by
/// `generator` or `discriminator` under the root of a new VarStore on `device`, behind a check
/// of its inputs against `shapes`. Only the chosen constructor runs, so building one network
/// draws from the global RNG exactly what its constructor draws. `plugin` names the
/// architecture in error messages.
pub fn build<G: Generator, D: Discriminator>(
    plugin: &'static str,
    name: &str,
    device: Device,
    shapes: Shapes,
    generator: impl FnOnce(nn::Path) -> G,
    discriminator: impl FnOnce(nn::Path) -> D,
) -> lab_plugin_api::Result<Box<dyn Network>> {
    let vs = nn::VarStore::new(device);
    match name {
        GENERATOR => {
            let g = generator(vs.root());
            let forward = move |inputs: &[Tensor], train: bool| {
                let inputs = inputs::split(plugin, GENERATOR, inputs, shapes.conditional)?;
                let z = inputs::latent(plugin, inputs.main, shapes.z_dim)?;
                let mut outputs = g.generate_outputs(&z, inputs.labels, train);
                // A fully connected generator may return flat images.
                let [c, h, w] = shapes.image;
                let x = &outputs[0];
                if x.dim() == 2 && x.size()[1] == c * h * w {
                    outputs[0] = x.view([-1, c, h, w]);
                }
                Ok(outputs)
            };
            Ok(Box::new(VarStoreNetwork { vs, forward }))
        }
        DISCRIMINATOR => {
            let d = discriminator(vs.root());
            let forward = move |inputs: &[Tensor], train: bool| {
                let inputs = inputs::split(plugin, DISCRIMINATOR, inputs, shapes.conditional)?;
                inputs::check_shape(plugin, DISCRIMINATOR, "images", inputs.main, &shapes.image)?;
                let (logits, features) = d.discriminate(inputs.main, inputs.labels, train);
                Ok(vec![logits, features])
            };
            Ok(Box::new(VarStoreNetwork { vs, forward }))
        }
        other => Err(lab_plugin_api::Error::new(format!(
            "{plugin} has no network `{other}`; valid names: {}",
            NETWORKS.join(", ")
        ))),
    }
}

/// A G/D architecture reduced to what is its own: its config, resolved against the data into
/// settings, and its two networks. [`Gan`] makes it a complete architecture plugin.
pub trait GanModel: Sized + Send + 'static {
    /// The name users write as `model.architecture`.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// `[model.config]`, parsed with unknown keys refused; `Default` is the documented default.
    type Config: Serialize + DeserializeOwned + Default;
    type G: Generator;
    type D: Discriminator;

    /// Checks the config and resolves it against the data (sizes, channels, classes).
    fn resolve(config: Self::Config, data: &DataSpec) -> lab_plugin_api::Result<Self>;
    /// What the networks accept.
    fn shapes(&self) -> Shapes;
    /// The number of classes the networks are conditioned on; 0 (the default) when
    /// unconditional.
    fn num_classes(&self) -> i64 {
        0
    }
    /// A fresh generator under `p`.
    fn generator(&self, p: nn::Path) -> Self::G;
    /// A fresh discriminator under `p`.
    fn discriminator(&self, p: nn::Path) -> Self::D;
}

/// The architecture plugin of a [`GanModel`]: `export_plugins! { architecture: Gan<MyModel> }`.
#[derive(Debug)]
pub struct Gan<M> {
    model: M,
    device: Device,
}

impl<M> Gan<M> {
    /// The resolved settings.
    pub fn settings(&self) -> &M {
        &self.model
    }
}

impl<M: GanModel> ArchitecturePlugin for Gan<M> {
    const NAME: &'static str = M::NAME;
    const DESCRIPTION: &'static str = M::DESCRIPTION;
    type Config = M::Config;

    fn create(config: M::Config, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        Ok(Self { model: M::resolve(config, &env.data)?, device: env.device() })
    }

    fn z_dim(&self) -> i64 {
        self.model.shapes().z_dim
    }

    /// The core passes labels (`[z, y]`, `[x, y]`) exactly when this is non-zero.
    fn num_classes(&self) -> i64 {
        self.model.num_classes()
    }

    fn networks(&self) -> Vec<Spec> {
        networks()
    }

    fn build(&self, name: &str) -> lab_plugin_api::Result<Box<dyn Network>> {
        let m = &self.model;
        build(M::NAME, name, self.device, m.shapes(), |p| m.generator(p), |p| m.discriminator(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::{self, Kind};
    use lab_plugin_testkit::rng_lock;

    const SHAPES: Shapes = Shapes { z_dim: 3, image: [1, 2, 2], conditional: true };

    /// z `[N, 3]` → `[N, 1, 2, 2]`: the sum of z times a weight `w` drawn from the global RNG,
    /// plus the label.
    struct Toy(Tensor);

    impl Generator for Toy {
        fn generate(&self, z: &Tensor, labels: Option<&Tensor>, _train: bool) -> Tensor {
            let y = labels.expect("conditional").to_kind(Kind::Float);
            let value = z.sum_dim_intlist([1i64].as_slice(), false, Kind::Float) * &self.0 + y;
            value.view([-1, 1, 1, 1]).expand([-1, 1, 2, 2], false)
        }
    }

    /// Images → (their mean plus a weight `v`, the flattened images).
    struct Critic(Tensor);

    impl Discriminator for Critic {
        fn discriminate(&self, x: &Tensor, _labels: Option<&Tensor>, _train: bool) -> (Tensor, Tensor) {
            let features = x.flatten(1, -1);
            (features.mean_dim([1i64].as_slice(), false, Kind::Float) + &self.0, features)
        }
    }

    fn toy(p: nn::Path) -> Toy {
        Toy(p.randn("w", &[1], 0.0, 1.0))
    }

    fn critic(p: nn::Path) -> Critic {
        Critic(p.zeros("v", &[1]))
    }

    fn build_toy(name: &str, shapes: Shapes) -> lab_plugin_api::Result<Box<dyn Network>> {
        build("toy", name, Device::Cpu, shapes, toy, critic)
    }

    fn floats(values: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(values).view(shape)
    }

    #[test]
    fn declares_a_generator_and_a_discriminator() {
        let specs: Vec<_> = networks().into_iter().map(|s| (s.name, s.phases)).collect();
        assert_eq!(
            specs,
            [("generator".to_string(), vec!["G".to_string()]), ("discriminator".into(), vec!["D".to_string()])]
        );
    }

    #[test]
    fn builds_each_network_by_name_with_its_variables() {
        let _rng = rng_lock();
        tch::manual_seed(0);
        let mut g = build_toy("generator", SHAPES).unwrap();
        // The generator's weight is the first draw after the seed: the discriminator's
        // constructor did not run.
        tch::manual_seed(0);
        let w = Tensor::randn([1], (Kind::Float, Device::Cpu));
        let names = |net: &dyn Network| -> Vec<(String, bool)> {
            net.tensors().into_iter().map(|(n, _, trainable)| (n, trainable)).collect()
        };
        assert_eq!(names(&*g), vec![("w".to_string(), true)]);
        // z may come as `[N, z_dim, 1, 1]`; it reaches the network as `[N, z_dim]`.
        let z = floats(&[1.0, 2.0, 3.0], &[1, 3, 1, 1]);
        let x = g.forward(&[z, Tensor::from_slice(&[2i64])], true).unwrap().remove(0);
        assert!(x.equal(&(w * 6.0 + 2.0).view([1, 1, 1, 1]).expand([1, 1, 2, 2], false)));

        let mut d = build_toy("discriminator", SHAPES).unwrap();
        assert_eq!(names(&*d), vec![("v".to_string(), true)]);
        let x = floats(&[1.0, 2.0, 3.0, 6.0], &[1, 1, 2, 2]);
        let out = d.forward(&[x, Tensor::from_slice(&[0i64])], true).unwrap();
        assert!(out[0].equal(&Tensor::from_slice(&[3.0f32])), "logits");
        assert_eq!(out[1].size(), [1, 4], "then features");
    }

    #[test]
    fn inputs_are_checked_before_the_networks_run() {
        // Building the toy generator draws its weight from the global generator.
        let _rng = rng_lock();
        let mut g = build_toy("generator", SHAPES).unwrap();
        let mut d = build_toy("discriminator", SHAPES).unwrap();
        let labels = Tensor::from_slice(&[0i64, 1]);
        let err = g.forward(&[Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)), labels.shallow_clone()], true);
        assert_eq!(err.unwrap_err().to_string(), "toy generator: z must have shape [N, 3], got [2, 4]");
        let err = g.forward(&[Tensor::zeros([2, 3], (Kind::Float, Device::Cpu))], true);
        assert_eq!(
            err.unwrap_err().to_string(),
            "toy generator is conditional: expected inputs [input, labels], got 1 tensor"
        );
        let err = d.forward(&[Tensor::zeros([2, 3, 2, 2], (Kind::Float, Device::Cpu)), labels], true);
        assert_eq!(
            err.unwrap_err().to_string(),
            "toy discriminator: images must have shape [N, 1, 2, 2], got [2, 3, 2, 2]"
        );
        let err = d.forward(&[], true);
        assert_eq!(err.unwrap_err().to_string(), "toy discriminator: expected inputs [input, labels], got 0 tensors");

        // Unconditional networks never see labels, even when the core passes them.
        struct NoLabels;
        impl Discriminator for NoLabels {
            fn discriminate(&self, x: &Tensor, labels: Option<&Tensor>, _train: bool) -> (Tensor, Tensor) {
                assert!(labels.is_none());
                (x.sum(Kind::Float).view([1]), x.shallow_clone())
            }
        }
        let shapes = Shapes { conditional: false, ..SHAPES };
        let mut d = build("toy", DISCRIMINATOR, Device::Cpu, shapes, toy, |_| NoLabels).unwrap();
        let x = Tensor::ones([1, 1, 2, 2], (Kind::Float, Device::Cpu));
        assert!(d.forward(&[x, Tensor::from_slice(&[5i64])], false).is_ok());
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let _rng = rng_lock();
        let err = build_toy("encoder", SHAPES).err().unwrap();
        assert_eq!(err, "toy has no network `encoder`; valid names: generator, discriminator");
    }
}
