//! The scaler against GradScaler's rules on constructed gradients, and the autocast switch
//! against what libtorch then does to a matrix product.
use tch::{Device, Kind, Tensor};

use super::*;

#[test]
fn unscaling_divides_by_the_scale_and_finds_no_overflow_in_finite_gradients() {
    let scaler = Scaler::new(1024.0, 2000);
    let mut grads = vec![Tensor::from_slice(&[2048.0f32, -512.0]), Tensor::from_slice(&[1.0f32])];
    let found = scaler.unscale(&mut grads).expect("two defined gradients");
    assert_eq!(Vec::<f32>::try_from(&grads[0]).unwrap(), vec![2.0, -0.5]);
    assert_eq!(Vec::<f32>::try_from(&grads[1]).unwrap(), vec![1.0 / 1024.0]);
    assert!(!bool::try_from(&found).unwrap());
}

#[test]
fn an_inf_or_a_nan_in_any_gradient_is_an_overflow_and_undefined_ones_are_skipped() {
    let scaler = Scaler::new(65536.0, 2000);
    for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        let mut grads = vec![Tensor::new(), Tensor::from_slice(&[1.0f32, 2.0]), Tensor::from_slice(&[3.0f32, bad])];
        let found = scaler.unscale(&mut grads).unwrap();
        assert!(bool::try_from(&found).unwrap(), "{bad} not found");
        assert!(!grads[0].defined(), "an unreached parameter's gradient stays undefined");
    }
    assert!(scaler.unscale(&mut [Tensor::new()]).is_none(), "nothing defined: nothing to report");
}

#[test]
fn the_scale_halves_on_an_overflow_and_doubles_after_the_growth_interval() {
    // GradScaler.update, written out: overflow → scale × ½, tracker 0; otherwise tracker + 1,
    // and at the interval scale × 2, tracker 0.
    let mut scaler = Scaler::new(8.0, 3);
    let events = [false, false, true, false, false, false, false, true, true];
    let mut expected = Vec::new();
    let (mut scale, mut tracker, mut skipped) = (8.0, 0u64, 0u64);
    for &overflow in &events {
        if overflow {
            scale /= 2.0;
            tracker = 0;
            skipped += 1;
        } else {
            tracker += 1;
            if tracker == 3 {
                scale *= 2.0;
                tracker = 0;
            }
        }
        expected.push((scale, tracker));
    }
    let seen: Vec<(f64, u64)> = events
        .iter()
        .map(|&o| {
            scaler.update(o);
            (scaler.scale, scaler.growth_tracker)
        })
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(seen, vec![(8.0, 1), (8.0, 2), (4.0, 0), (4.0, 1), (4.0, 2), (8.0, 0), (8.0, 1), (4.0, 0), (2.0, 0)]);
    assert_eq!(scaler.skipped, skipped);
}

#[test]
fn the_scaled_loss_is_fp32_so_an_fp16_loss_does_not_overflow_when_scaled() {
    let loss = Tensor::from(2.0f64).to_kind(Kind::Half);
    let scaled = Scaler::new(65536.0, 2000).scaled(&loss);
    assert_eq!(scaled.kind(), Kind::Float);
    assert_eq!(f64::try_from(&scaled).unwrap(), 131072.0, "2 × 2^16 is beyond fp16's 65504");
}

#[test]
fn autocast_runs_matrix_products_in_the_chosen_dtype_and_restores_fp32_after() {
    let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
    assert!(!Autocast::is_enabled(Device::Cpu));
    assert!(Autocast::enter(Precision::Full, Device::Cpu).unwrap().is_none(), "fp32 needs no guard");
    {
        let _bf16 = Autocast::enter(Precision::Bf16, Device::Cpu).unwrap().unwrap();
        assert!(Autocast::is_enabled(Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
        {
            // Nested: the inner dtype wins inside, the outer one comes back after.
            let _fp16 = Autocast::enter(Precision::Fp16, Device::Cpu).unwrap().unwrap();
            assert_eq!(a.matmul(&a).kind(), Kind::Half);
        }
        assert!(Autocast::is_enabled(Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
    }
    assert!(!Autocast::is_enabled(Device::Cpu));
    assert_eq!(a.matmul(&a).kind(), Kind::Float);
}
