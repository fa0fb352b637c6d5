//! The gating rule against the official code's cases, and the authors' MNIST network sizes.
use lab_nn::prelude::*;
use lab_plugin_testkit::{architecture, FASHION_MNIST};

use crate::{Gate, VaeGan};

#[test]
fn gating_follows_the_equilibrium_rule() {
    let (e, m) = (0.68, 0.35);
    let both = Gate { discriminator: true, decoder: true };
    assert_eq!(Gate::decide(0.7, 0.7, e, m), both, "inside the band: both step");
    // D too good on either side (a cost below 0.33): D rests.
    assert_eq!(Gate::decide(0.2, 0.7, e, m), Gate { discriminator: false, decoder: true });
    assert_eq!(Gate::decide(0.7, 0.3, e, m), Gate { discriminator: false, decoder: true });
    // D too weak (a cost above 1.03): the decoder rests.
    assert_eq!(Gate::decide(1.2, 0.7, e, m), Gate { discriminator: true, decoder: false });
    // Both would rest: both step.
    assert_eq!(Gate::decide(0.2, 1.2, e, m), both);
    assert_eq!(Gate::decide(0.0, 9.0, e, 0.0), both, "margin 0: no gating");
}

#[test]
fn the_networks_are_the_authors_mnist_mlps() {
    let arch = architecture::create::<VaeGan>("", FASHION_MNIST).unwrap();
    let count = |name| architecture::ArchitectureUnderTest::parameter_count(&arch.build(name).unwrap()).unwrap();
    let block = |i: i64| i * 1024 + 1024 + 2 * 1024;
    assert_eq!(count("encoder"), block(784) + block(1024) + 2 * (1024 * 128 + 128));
    assert_eq!(count("generator"), block(128) + block(1024) + (1024 * 784 + 784));
    assert_eq!(count("discriminator"), block(784) + block(1024) + (1024 + 1));
    let mut d = arch.build("discriminator").unwrap();
    let out = d.forward(&[Tensor::rand([3, 1, 28, 28], (Kind::Float, tch::Device::Cpu))], true).unwrap();
    assert_eq!((out[0].size(), out[1].size()), (vec![3], vec![3, 1024]));
    let err = architecture::create::<VaeGan>("recon_depth = 4", FASHION_MNIST).err().unwrap();
    assert_eq!(
        err.to_string(),
        "key `recon_depth`: expected 3 (after D's first block) or 6 (after its second), found 4"
    );
}
