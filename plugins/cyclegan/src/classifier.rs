//! A small CNN that tells domain A from domain B, trained inside the plugin on the two
//! training splits: the judge of whether G_AB(A) looks like B (and G_BA(B) like A) to a
//! network that never saw a translation.
//!
//! Images larger than 64×64 are average-pooled down to at most 64×64 first, so training it
//! costs little at 256². Its training is seeded with its own fixed seed, so the same data give
//! the same classifier in a run, its resume and `lab eval`.
use lab_nn::prelude::*;
use lab_plugin_api::tch::Device;

/// The classifier's own seed.
const SEED: i64 = 0x0c1a_551f;
/// Images of each domain per training step.
const HALF_BATCH: i64 = 32;
/// The largest side the classifier reads.
const MAX_SIDE: i64 = 64;
const LEARNING_RATE: f64 = 1e-3;

/// The trained classifier: logit > 0 means domain B.
pub struct DomainClassifier {
    _vs: nn::VarStore,
    net: nn::SequentialT,
}

impl std::fmt::Debug for DomainClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainClassifier")
    }
}

/// `x` at most [`MAX_SIDE`] on each side, float32.
pub fn shrink(x: &Tensor) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let x = x.to_kind(Kind::Float);
    if h > MAX_SIDE || w > MAX_SIDE {
        x.adaptive_avg_pool2d([h.min(MAX_SIDE), w.min(MAX_SIDE)])
    } else {
        x
    }
}

fn network(p: &nn::Path, channels: i64) -> nn::SequentialT {
    let conv = |name: &str, input: i64, output: i64| {
        nn::conv2d(p / name, input, output, 3, nn::ConvConfig { stride: 2, padding: 1, ..Default::default() })
    };
    nn::seq_t()
        .add(conv("conv1", channels, 16))
        .add(leaky_relu(0.2))
        .add(conv("conv2", 16, 32))
        .add(leaky_relu(0.2))
        .add(conv("conv3", 32, 64))
        .add(leaky_relu(0.2))
        .add_fn(|h| h.mean_dim([2i64, 3].as_slice(), false, Kind::Float))
        .add(nn::linear(p / "out", 64, 1, Default::default()))
}

impl DomainClassifier {
    /// Trains for `steps` steps of Adam on balanced batches of `images_a` (label 0) and
    /// `images_b` (label 1), both already [`shrink`]-ed and on `device`.
    pub fn train(images_a: &Tensor, images_b: &Tensor, steps: i64, device: Device) -> Result<Self> {
        let (na, nb) = (images_a.size()[0], images_b.size()[0]);
        if na == 0 || nb == 0 {
            return Err(lab_plugin_api::Error::new(format!(
                "the domain classifier needs training images of both domains; it has {na} of A and {nb} of B"
            )));
        }
        tch::manual_seed(SEED);
        let vs = nn::VarStore::new(device);
        let net = network(&vs.root(), images_a.size()[1]);
        let mut opt = nn::OptimizerConfig::build(nn::Adam::default(), &vs, LEARNING_RATE)
            .map_err(|e| lab_plugin_api::Error::new(format!("the domain classifier's optimizer: {e}")))?;
        let targets = Tensor::cat(
            &[
                Tensor::zeros([HALF_BATCH, 1], (Kind::Float, device)),
                Tensor::ones([HALF_BATCH, 1], (Kind::Float, device)),
            ],
            0,
        );
        tch::with_grad(|| {
            for _ in 0..steps {
                let pick_a = Tensor::randint(na, [HALF_BATCH], (Kind::Int64, device));
                let pick_b = Tensor::randint(nb, [HALF_BATCH], (Kind::Int64, device));
                let x = Tensor::cat(&[images_a.index_select(0, &pick_a), images_b.index_select(0, &pick_b)], 0);
                let loss = x.apply_t(&net, true).binary_cross_entropy_with_logits::<Tensor>(
                    &targets,
                    None,
                    None,
                    tch::Reduction::Mean,
                );
                opt.backward_step(&loss);
            }
        });
        Ok(Self { _vs: vs, net })
    }

    /// Whether each image of `x` (any size, in [-1, 1]) is called domain B, as 0/1 floats.
    pub fn says_b(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| shrink(x).apply_t(&self.net, false).view([-1]).gt(0.0).to_kind(Kind::Float))
    }
}
