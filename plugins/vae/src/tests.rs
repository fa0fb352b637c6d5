//! The ELBO against hand computations, the reference networks' sizes, and the model's own
//! measure against the same estimate written out here.
use lab_nn::prelude::*;
use lab_plugin_testkit::{architecture, images, loss, rng_lock, FASHION_MNIST};

use crate::{Elbo, ElboTerms, Vae};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn kl_of_known_gaussians_and_bce_of_even_odds() {
    let zeros = Tensor::zeros([2, 20], (Kind::Float, tch::Device::Cpu));
    let logits = Tensor::zeros([2, 784], (Kind::Float, tch::Device::Cpu));
    let target = Tensor::full([2, 784], 0.3, (Kind::Float, tch::Device::Cpu));
    // q = N(0, I) is the prior: KL 0; logits 0 give p = 1/2 for every pixel: 784·ln 2.
    let t = ElboTerms::of(&zeros, &zeros, &logits, &target);
    assert!(t.kl.abs().max().double_value(&[]) < 1e-7);
    assert!(close(t.reconstruction.double_value(&[0]), 784.0 * 2f64.ln(), 1e-6));
    // μ = 1, σ = 1: KL = ½·Σμ² = 10 over 20 dimensions.
    let t = ElboTerms::of(&(&zeros + 1.0), &zeros, &logits, &target);
    assert!(close(t.kl.double_value(&[1]), 10.0, 1e-6));
    // μ = 0, σ² = 2: KL = ½·Σ(σ² − 1 − ln σ²) = 10·(1 − ln 2).
    let t = ElboTerms::of(&zeros, &(&zeros + 2f64.ln()), &logits, &target);
    assert!(close(t.kl.double_value(&[0]), 10.0 * (1.0 - 2f64.ln()), 1e-6));
    // A confident, right logit costs little; the BCE against a grey target t = 0.3 at logit l
    // is softplus(l) − t·l.
    let l = Tensor::full([1, 784], 2.0, (Kind::Float, tch::Device::Cpu));
    let t = ElboTerms::of(&zeros.narrow(0, 0, 1), &zeros.narrow(0, 0, 1), &l, &target.narrow(0, 0, 1));
    let by_hand = 784.0 * ((1.0 + 2f64.exp()).ln() - 0.3 * 2.0);
    assert!(close(t.reconstruction.double_value(&[0]), by_hand, 1e-5));
    assert!(close(t.negative_elbo(0.5).double_value(&[0]), by_hand, 1e-5));
}

#[test]
fn the_reference_networks_have_pytorchs_parameter_counts() {
    // Builds draw weights: hold the lock so other tests' draws stay theirs.
    let _rng = rng_lock();
    let arch = architecture::create::<Vae>("", FASHION_MNIST).unwrap();
    let count = |name| architecture::ArchitectureUnderTest::parameter_count(&arch.build(name).unwrap()).unwrap();
    // PyTorch examples/vae: fc1 Linear(784, 400), fc21/fc22 Linear(400, 20); fc3 Linear(20, 400),
    // fc4 Linear(400, 784).
    assert_eq!(count("encoder"), (784 * 400 + 400) + 2 * (400 * 20 + 20));
    assert_eq!(count("generator"), (20 * 400 + 400) + (400 * 784 + 784));
    assert_eq!(
        arch.info().networks.iter().map(|s| (s.name.as_str(), s.phases.clone())).collect::<Vec<_>>(),
        [("encoder", vec!["G".to_string()]), ("generator", vec!["G".to_string()])]
    );
    // The paper's model: 500 tanh units.
    let paper =
        architecture::create::<Vae>("hidden = 500\nactivation = \"tanh\"\ninit = \"normal\"", FASHION_MNIST).unwrap();
    let g = paper.build("generator").unwrap();
    let std = g.tensors().unwrap().iter().find(|(n, _, _)| n == "out.weight").unwrap().1.std(true).double_value(&[]);
    assert!((std - 0.01).abs() < 0.001, "N(0, 0.01) weights, std {std}");
    let err = architecture::create::<Vae>("activation = \"elu\"", FASHION_MNIST).err().unwrap();
    assert_eq!(err.to_string(), "key `activation`: expected relu or tanh, found \"elu\" (did you mean `relu`?)");
}

#[test]
fn the_decoder_draws_bernoulli_means_as_images() {
    let _rng = rng_lock();
    tch::manual_seed(0);
    let arch = architecture::create::<Vae>("", FASHION_MNIST).unwrap();
    let mut g = arch.build("generator").unwrap();
    let out = g.forward(&[Tensor::randn([5, 20], (Kind::Float, tch::Device::Cpu))], false).unwrap();
    assert_eq!(out[0].size(), [5, 1, 28, 28]);
    let expected = (out[1].sigmoid() * 2.0 - 1.0).reshape([5, 1, 28, 28]);
    assert!(out[0].allclose(&expected, 1e-6, 1e-6, false));
}

/// The model's `elbo` is the one-sample estimate written out here from the paper's formula,
/// with the same draws of ε (the core seeds libtorch before `evaluate`; so does this test).
#[test]
fn the_models_elbo_is_the_one_sample_estimate() {
    let _rng = rng_lock();
    tch::manual_seed(3);
    let arch = architecture::create::<Vae>("eval_batch = 7", FASHION_MNIST).unwrap();
    let (enc, dec) = (arch.build("encoder").unwrap(), arch.build("generator").unwrap());
    let reference = images(10, FASHION_MNIST);
    let train = images(30, FASHION_MNIST);
    tch::manual_seed(99);
    let values = arch.evaluate(vec![("encoder", enc), ("generator", dec)], (&reference, None), (&train, None)).unwrap();
    assert_eq!(values.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), arch.measures().unwrap());

    // Again by hand: the same networks (same seed), the same order of draws (batches of 7).
    tch::manual_seed(3);
    let (mut enc, mut dec) = (arch.build("encoder").unwrap(), arch.build("generator").unwrap());
    tch::manual_seed(99);
    let mut by_hand = |x: &Tensor| -> f64 {
        let mut total = 0.0;
        for (start, n) in [(0, 7), (7, 3)] {
            let xb = x.narrow(0, start, n);
            let q = enc.forward(&[xb.shallow_clone()], false).unwrap();
            let (mu, logvar) = (&q[0], &q[1]);
            let z = mu + Tensor::randn_like(mu) * (logvar * 0.5).exp();
            // log p = log σ(l), log(1 − p) = log σ(−l), in double precision.
            let l = dec.forward(&[z], false).unwrap()[1].to_kind(Kind::Double);
            let t = ((xb + 1.0) * 0.5).reshape([n, -1]).to_kind(Kind::Double);
            let log_lik = (&t * l.sigmoid().log() + (-&t + 1.0) * (-&l).sigmoid().log()).sum(Kind::Double);
            let kl = ((logvar.exp() + mu.square() - 1.0 - logvar) * 0.5).sum(Kind::Double);
            total += (log_lik - kl).double_value(&[]);
        }
        total / 10.0
    };
    let elbo = tch::no_grad(|| by_hand(&reference));
    let elbo_train = tch::no_grad(|| by_hand(&train.narrow(0, 0, 10)));
    assert!(close(values[0].value, elbo, 1e-4), "{} vs {elbo}", values[0].value);
    assert!(close(values[1].value, elbo_train, 1e-4), "{} vs {elbo_train}", values[1].value);
    assert!(values[0].higher_is_better && !values[2].higher_is_better);
}

#[test]
fn the_loss_reaches_encoder_and_decoder_and_logs_the_elbo() {
    let _rng = rng_lock();
    tch::manual_seed(0);
    let arch = architecture::create::<Vae>("z_dim = 4\nhidden = 16", FASHION_MNIST).unwrap();
    let (enc, dec) = (arch.build("encoder").unwrap(), arch.build("generator").unwrap());
    let params: Vec<Tensor> =
        enc.tensors().unwrap().into_iter().chain(dec.tensors().unwrap()).map(|(_, t, _)| t).collect();
    let enc = std::cell::RefCell::new(enc);
    let dec = std::cell::RefCell::new(dec);
    let mut host = loss::FakeLossHost::new("G");
    host.real = images(6, FASHION_MNIST);
    host.networks.insert("encoder".into(), Box::new(move |i: &[Tensor]| enc.borrow_mut().forward(i, true).unwrap()));
    host.networks.insert("generator".into(), Box::new(move |i: &[Tensor]| dec.borrow_mut().forward(i, true).unwrap()));
    let mut elbo = loss::create::<Elbo>("").unwrap();
    let value = host.loss(&mut elbo).unwrap();
    value.backward();
    for p in &params {
        assert!(loss::grad_sum(p) > 0.0);
    }
    let logged = host.logged("loss/elbo").unwrap();
    assert!(close(-logged, value.double_value(&[]), 1e-5), "β = 1: the loss is −ELBO");
    assert!(close(host.logged("loss/kl").unwrap() + host.logged("loss/reconstruction").unwrap(), -logged, 1e-5));
}
