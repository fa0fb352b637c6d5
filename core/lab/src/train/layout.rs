//! `train.channels_last`: 4-D tensors (convolution weights, image batches) kept in NHWC memory
//! order with their logical NCHW shape, as PyTorch's `memory_format=torch.channels_last` does.
//! Convolutions given channels-last inputs or weights run their channels-last kernels (cuDNN's
//! tensor-core paths, oneDNN's blocked ones on CPU) and return channels-last outputs, so once the
//! weights and the real batch are converted the whole network stays in that layout.
//!
//! tch binds no memory-format argument, so the conversion is spelled out: a tensor with
//! channels-last strides, copied into. The result is what `contiguous(channels_last)` returns
//! (same strides, same values), and every operation sees the same logical tensor.
//!
//! The fused optimizer buffers ([`super::optim::flat`]) hold each parameter in its own memory
//! order ([`memory_order`]), so a channels-last weight is still a plain view of its buffer.
use tch::Tensor;

/// `t` in channels-last memory order when it is a 4-D floating tensor; `t` itself otherwise.
pub fn channels_last(t: &Tensor) -> Tensor {
    if t.dim() != 4 || !t.is_floating_point() {
        return t.shallow_clone();
    }
    // Strides written out rather than `permute(…).contiguous()`, which leaves a 1×1 kernel's
    // strides as they were (size-1 dimensions make both orders "contiguous"): these are the
    // strides PyTorch gives every channels-last tensor, so its layout checks agree.
    let [_, c, h, w] = t.size()[..] else { unreachable!("4-D") };
    let mut out = Tensor::empty_strided([t.size()[0], c, h, w], [h * w * c, 1, w * c, c], (t.kind(), t.device()));
    // `copy_` is differentiable: under grad mode the copy stays in `t`'s graph.
    out.copy_(t);
    out
}

/// Whether `t`'s memory runs N, H, W, C (a 4-D tensor made by [`channels_last`]).
pub fn is_channels_last(t: &Tensor) -> bool {
    t.dim() == 4 && memory_order(t) == [0, 2, 3, 1]
}

/// Moves every 4-D floating tensor of a network into channels-last order, in place (`set_data`
/// on the tensors the plugin holds, so its layers see the new layout). Returns how many moved.
pub fn adopt_channels_last<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> usize {
    tch::no_grad(|| {
        let mut moved = 0;
        for t in tensors {
            if t.dim() == 4 && t.is_floating_point() && !is_channels_last(t) {
                let mut held = t.shallow_clone();
                held.set_data(&channels_last(t));
                moved += 1;
            }
        }
        moved
    })
}

/// The dimensions of `t` from the outermost in memory to the innermost: by decreasing stride,
/// ties (size-1 dimensions) in their logical order. `t.permute(order)` is then contiguous when
/// `t` is dense, and `.reshape([-1])` of it lists the elements in memory order without a copy.
pub fn memory_order(t: &Tensor) -> Vec<i64> {
    let strides = t.stride();
    let mut order: Vec<i64> = (0..strides.len() as i64).collect();
    order.sort_by(|&a, &b| strides[b as usize].cmp(&strides[a as usize]).then(a.cmp(&b)));
    order
}

/// The permutation that undoes `order`: `t.permute(order).permute(inverse(order))` is `t`.
pub fn inverse(order: &[i64]) -> Vec<i64> {
    let mut inv = vec![0; order.len()];
    for (position, &dim) in order.iter().enumerate() {
        inv[dim as usize] = position as i64;
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn channels_last_keeps_values_and_shape_and_orders_memory_nhwc() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        let c = channels_last(&t);
        assert_eq!(c.size(), [2, 3, 4, 5]);
        assert_eq!(c.stride(), [60, 1, 15, 3], "NHWC strides, as PyTorch's channels_last");
        assert!(is_channels_last(&c) && !is_channels_last(&t));
        assert!(c.equal(&t));
        assert_eq!(memory_order(&c), [0, 2, 3, 1]);
        // 1×1 kernels: the size-1 dimensions tie, and still come out N, H, W, C.
        let k = channels_last(&Tensor::ones([8, 3, 1, 1], (Kind::Float, Device::Cpu)));
        assert_eq!(memory_order(&k), [0, 2, 3, 1]);
    }

    #[test]
    fn memory_order_lists_elements_as_they_lie_in_memory() {
        let t = channels_last(&Tensor::randn([3, 4, 2, 5], (Kind::Float, Device::Cpu)));
        let order = memory_order(&t);
        let flat = t.permute(order.as_slice()).reshape([-1]);
        assert_eq!(flat.data_ptr(), t.data_ptr(), "a view, not a copy");
        let back = flat.view([3, 2, 5, 4]).permute(inverse(&order).as_slice());
        assert!(back.equal(&t));
        assert_eq!(memory_order(&Tensor::zeros([4, 5], (Kind::Float, Device::Cpu))), [0, 1]);
        assert_eq!(inverse(&[0, 2, 3, 1]), [0, 3, 1, 2]);
    }

    #[test]
    fn adopting_changes_the_layout_of_the_held_tensor_only_for_4d_floats() {
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let bias = Tensor::randn([4], (Kind::Float, Device::Cpu));
        let before = w.detach().copy();
        let held = [w.shallow_clone(), bias.shallow_clone()];
        assert_eq!(adopt_channels_last(&held), 1);
        assert!(is_channels_last(&w), "the caller's own handle sees the new layout");
        assert!(w.requires_grad() && w.detach().equal(&before));
        assert_eq!(bias.stride(), [1]);
        assert_eq!(adopt_channels_last(&held), 0, "already channels-last");
    }
}
