//! Augmentations under test: created through the descriptor, applied through the core's handle.
use lab_plugin_api::host::{into_result, Augment, Factory};
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{AugmentPlugin, DataSpec, Result};

use crate::{all_finite, cpu_env};

/// Creates augmentation `P` from `config` (the TOML of `[augment.config]`) as the core does.
pub fn create<P: AugmentPlugin>(config: &str, data: DataSpec) -> Result<Augment> {
    let Factory::Augmentation(create) = lab_plugin_api::augment::descriptor::<P>("test").factory else {
        unreachable!("an augmentation descriptor holds an augmentation factory")
    };
    let obj = into_result(create(config.into(), cpu_env(data)))?;
    // SAFETY: the factory is compiled into this test binary, so its code outlives the handle.
    Ok(unsafe { Augment::from_raw(obj) })
}

/// The checks every augmentation must pass on the batch `x`, panicking with what failed:
/// it keeps the shape and finiteness, the seed decides the result (same seed, same output),
/// and gradients flow back to `x` (D's loss must reach G through it).
pub fn check(augment: &mut Augment, x: &Tensor) {
    let a = augment.apply(x, 7).expect("apply");
    assert_eq!(a.size(), x.size(), "an augmentation keeps the batch's shape");
    assert!(all_finite(&a), "augmented images are finite");
    let b = augment.apply(x, 7).expect("apply");
    assert!(a.equal(&b), "the same seed gives the same augmentation; draw randomness from the seed passed to `apply`");
    let x = x.detach().set_requires_grad(true);
    augment.apply(&x, 7).expect("apply").sum(Kind::Float).backward();
    let g = x.grad();
    assert!(
        g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
        "gradients flow back through the augmentation"
    );
}
