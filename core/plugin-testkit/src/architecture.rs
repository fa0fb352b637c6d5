//! Architectures under test: created from TOML through the plugin's descriptor, networks built
//! and run through the core's handles, and the checks every GAN architecture should pass.
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_TRAIN};
use lab_plugin_api::host::{into_result, Architecture, EvalHost, Factory, Info, NetworkHandle};
use lab_plugin_api::tch::{self, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, DataSpec, Error, Result, Value};

use crate::{all_finite, cpu_env, rng_lock};

/// An architecture plugin created exactly as `lab run` creates it.
pub struct ArchitectureUnderTest {
    arch: Architecture,
    data: DataSpec,
    info: Info,
}

/// Creates architecture `P` from `config` (the TOML of `[model.config]`) for `data` on the CPU.
/// Config errors come back as the [`lab_plugin_api::Error`] users would see.
pub fn create<P: ArchitecturePlugin>(config: &str, data: DataSpec) -> Result<ArchitectureUnderTest> {
    let Factory::Architecture(create) = lab_plugin_api::architecture::descriptor::<P>("test").factory else {
        unreachable!("an architecture descriptor holds an architecture factory")
    };
    let obj = into_result(create(config.into(), cpu_env(data)))?;
    // SAFETY: the factory is compiled into this test binary, so its code outlives the handle.
    let arch = unsafe { Architecture::from_raw(obj) };
    let info = arch.info()?;
    Ok(ArchitectureUnderTest { arch, data, info })
}

/// What [`ArchitectureUnderTest::check_gan`] measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GanReport {
    /// Trainable values in the generator and the discriminator (buffers not counted).
    pub generator_parameters: i64,
    pub discriminator_parameters: i64,
}

impl ArchitectureUnderTest {
    /// What the architecture declared: z's length, classes, networks and their phases.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Builds network `name` (e.g. `generator`).
    pub fn build(&self, name: &str) -> Result<NetworkHandle> {
        self.arch.build(name)
    }

    /// `n` latents: the architecture's own sampler, else N(0, I) as the core draws them.
    pub fn latents(&self, n: i64) -> Result<Tensor> {
        Ok(match self.arch.sample_latent(n)? {
            Some(z) => z,
            None => Tensor::randn([n, self.info.z_dim], (Kind::Float, Device::Cpu)),
        })
    }

    /// The inputs the core passes a network: `[main]`, or `[main, labels]` when conditional.
    pub fn inputs(&self, main: Tensor) -> Vec<Tensor> {
        let n = main.size()[0];
        let mut inputs = vec![main];
        if self.info.num_classes > 0 {
            inputs.push(crate::labels(n, self.info.num_classes));
        }
        inputs
    }

    /// The architecture's own measures ([`ArchitecturePlugin::evaluate`]) through the real
    /// context, on `networks` (built with [`Self::build`], trained or not) and two splits of
    /// images in [-1, 1] with optional labels.
    pub fn evaluate(
        &self,
        networks: Vec<(&str, NetworkHandle)>,
        reference: (&Tensor, Option<&Tensor>),
        train: (&Tensor, Option<&Tensor>),
    ) -> Result<Vec<Value>> {
        let mut host = SplitsHost {
            networks: networks.into_iter().map(|(n, h)| (n.to_string(), h)).collect(),
            reference,
            train,
            num_classes: self.info.num_classes,
        };
        self.arch.evaluate(&mut host)
    }

    /// What [`ArchitecturePlugin::measures`] declares.
    pub fn measures(&self) -> Result<Vec<String>> {
        self.arch.measures()
    }

    /// Trainable values of `net`, as PyTorch counts parameters (buffers excluded).
    pub fn parameter_count(net: &NetworkHandle) -> Result<i64> {
        Ok(net.tensors()?.iter().filter(|(_, _, trainable)| *trainable).map(|(_, t, _)| t.numel() as i64).sum())
    }

    /// The checks every G/D architecture must pass, panicking with what failed:
    /// - it declares a `generator` stepped in phase `G` and a `discriminator` in phase `D`;
    /// - G turns `n` latents into finite images of the data's shape in [-1, 1];
    /// - D turns images into one finite logit each (its first output);
    /// - a loss on D(G(z)) reaches every trainable tensor of both networks;
    /// - the seed decides the weights: two builds under one seed are identical, another differs.
    pub fn check_gan(&self, n: i64) -> GanReport {
        self.check_gan_with(n, true)
    }

    /// [`Self::check_gan`] for data that are not images in [-1, 1] (2-D toy points): G's
    /// output may take any finite value.
    pub fn check_gan_points(&self, n: i64) -> GanReport {
        self.check_gan_with(n, false)
    }

    fn check_gan_with(&self, n: i64, images: bool) -> GanReport {
        let phases = |name: &str| self.info.networks.iter().find(|s| s.name == name).map(|s| s.phases.clone());
        assert_eq!(phases("generator"), Some(vec!["G".to_string()]), "a `generator` stepped in phase G");
        assert_eq!(phases("discriminator"), Some(vec!["D".to_string()]), "a `discriminator` stepped in phase D");
        let _rng = rng_lock();
        tch::manual_seed(0);
        let mut g = self.build("generator").expect("the generator builds");
        let mut d = self.build("discriminator").expect("the discriminator builds");

        let z = self.latents(n).expect("latents");
        let x = g.forward(&self.inputs(z), true).expect("the generator runs").remove(0);
        let d_ = self.data;
        assert_eq!(x.size(), [n, d_.channels, d_.height, d_.width], "generator output is [N, C, H, W] of the data");
        assert!(all_finite(&x), "generator output is finite");
        let (lo, hi) = (x.min().double_value(&[]), x.max().double_value(&[]));
        assert!(
            !images || (lo >= -1.0 - 1e-6 && hi <= 1.0 + 1e-6),
            "generator output must lie in [-1, 1] (end with tanh); got [{lo}, {hi}]"
        );

        let logits = d.forward(&self.inputs(x), true).expect("the discriminator runs").remove(0);
        assert_eq!(logits.numel() as i64, n, "discriminator: one logit per image, got shape {:?}", logits.size());
        assert!(all_finite(&logits), "discriminator logits are finite");

        logits.sum(Kind::Float).backward();
        for (what, net) in [("generator", &g), ("discriminator", &d)] {
            let missing: Vec<String> = net
                .tensors()
                .expect("tensors")
                .into_iter()
                .filter(|(_, t, trainable)| {
                    *trainable && !(t.grad().defined() && t.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0)
                })
                .map(|(name, _, _)| name)
                .collect();
            assert!(missing.is_empty(), "{what}: no gradient reaches {missing:?} (unused, or cut by a detach)");
        }

        for name in ["generator", "discriminator"] {
            let weights = |seed: i64| {
                tch::manual_seed(seed);
                self.build(name).expect("builds").tensors().expect("tensors")
            };
            let (a, b, c) = (weights(0), weights(0), weights(1));
            let names = |w: &[(String, Tensor, bool)]| w.iter().map(|(n, _, _)| n.clone()).collect::<Vec<_>>();
            assert_eq!(names(&a), names(&b), "{name}: two builds have the same tensors");
            for ((n, ta, _), (_, tb, _)) in a.iter().zip(&b) {
                assert!(ta.equal(tb), "{name}: `{n}` differs between two builds under one seed; draw weights only from libtorch's global generator");
            }
            assert!(
                a.iter().zip(&c).any(|((_, ta, _), (_, tc, _))| !ta.equal(tc)),
                "{name}: another seed gives the same weights"
            );
        }
        GanReport {
            generator_parameters: Self::parameter_count(&g).expect("tensors"),
            discriminator_parameters: Self::parameter_count(&d).expect("tensors"),
        }
    }
}

/// The evaluation context over networks and tensors a test holds.
struct SplitsHost<'a> {
    networks: Vec<(String, NetworkHandle)>,
    reference: (&'a Tensor, Option<&'a Tensor>),
    train: (&'a Tensor, Option<&'a Tensor>),
    num_classes: i64,
}

impl SplitsHost<'_> {
    fn split(&self, split: &str) -> Result<(&Tensor, Option<&Tensor>)> {
        match split {
            SPLIT_REFERENCE => Ok(self.reference),
            SPLIT_TRAIN => Ok(self.train),
            other => Err(Error::new(format!("no split `{other}`"))),
        }
    }
}

impl EvalHost for SplitsHost<'_> {
    fn run_network(&mut self, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let Some((_, net)) = self.networks.iter_mut().find(|(n, _)| n == name) else {
            return Err(Error::new(format!("the test built no network `{name}`")));
        };
        tch::no_grad(|| net.forward(inputs, false))
    }
    fn count(&mut self, split: &str) -> Result<i64> {
        Ok(self.split(split)?.0.size()[0])
    }
    fn images(&mut self, split: &str, start: i64, n: i64) -> Result<Tensor> {
        Ok(self.split(split)?.0.narrow(0, start, n))
    }
    fn labels(&mut self, split: &str, start: i64, n: i64) -> Result<Option<Tensor>> {
        Ok(self.split(split)?.1.map(|l| l.narrow(0, start, n)))
    }
    fn num_classes(&mut self) -> Result<i64> {
        Ok(self.num_classes)
    }
}
