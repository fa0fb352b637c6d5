//! Fused updates: one flat buffer per network for its parameters and for each optimizer slot,
//! so a step costs a constant number of kernels however many tensors the network has (BigGAN-CIFAR's
//! 36 in G), where a per-tensor loop launches about eight per tensor. The parameters
//! are not copied: their data is moved into views of the buffer (`set_data` on the very
//! tensors the plugin holds), so the plugin's layers, the checkpoint and the EMA keep seeing
//! one set of weights. A step concatenates the gradients (one kernel) and runs the rule once on
//! the buffers; the per-parameter slot tensors are views too, so checkpoints read and restore
//! them as before.
//!
//! Each parameter lies in the buffer in its own memory order ([`crate::train::layout`]): a
//! channels-last weight is the buffer's slice viewed as N, H, W, C and permuted to its logical
//! shape, and its gradient is flattened the same way ([`Flat::flatten`]), so the update stays
//! one elementwise pass whatever the layouts.
//!
//! The elementwise arithmetic is the same per element as the per-tensor loop, so the results
//! are equal (on CPU, bit for bit; `optim::tests` checks it step by step, and the
//! reproducibility tests check reruns and resumes).
use tch::Tensor;

use crate::train::layout;

/// A network's parameters and optimizer slots, each in one contiguous buffer.
pub struct Flat {
    pub params: Tensor,
    pub slots: Vec<Tensor>,
    /// Each parameter's memory order, in which its elements lie in the buffers.
    orders: Vec<Vec<i64>>,
}

impl Flat {
    /// Moves `params` into one buffer and returns it with `slot_count` zeroed slot buffers and
    /// each slot's per-parameter views. `None` (the per-tensor path stays) when there is nothing
    /// to fuse or the parameters differ in dtype or device.
    pub fn adopt(params: &mut [Tensor], slot_count: usize) -> Option<(Flat, Vec<Vec<Tensor>>)> {
        let first = params.first()?;
        let (kind, device) = (first.kind(), first.device());
        if !first.is_floating_point() || params.iter().any(|p| p.kind() != kind || p.device() != device) {
            return None;
        }
        let orders: Vec<Vec<i64>> = params.iter().map(layout::memory_order).collect();
        let flats: Vec<Tensor> = params.iter().zip(&orders).map(|(p, o)| flatten(&p.detach(), o)).collect();
        let buffer = Tensor::cat(&flats, 0);
        // Each parameter's shape as it lies in memory, and the permutation back to its own.
        let stored: Vec<(Vec<i64>, Vec<i64>)> = params
            .iter()
            .zip(&orders)
            .map(|(p, o)| {
                let size = p.size();
                (o.iter().map(|&d| size[d as usize]).collect(), layout::inverse(o))
            })
            .collect();
        let views = |buffer: &Tensor| -> Vec<Tensor> {
            let mut offset = 0;
            stored
                .iter()
                .map(|(shape, back)| {
                    let n: i64 = shape.iter().product();
                    let view = buffer.narrow(0, offset, n).view(shape.as_slice()).permute(back.as_slice());
                    offset += n;
                    view
                })
                .collect()
        };
        for (p, view) in params.iter_mut().zip(views(&buffer)) {
            p.set_data(&view);
        }
        let slots: Vec<Tensor> = (0..slot_count).map(|_| buffer.zeros_like()).collect();
        let slot_views = slots.iter().map(views).collect();
        Some((Flat { params: buffer, slots, orders }, slot_views))
    }

    /// `grads` (one per parameter) as one tensor in the buffer's element order: a gradient in
    /// its parameter's layout (autograd's usual result) is read without a copy before the cat.
    pub fn flatten(&self, grads: &[Tensor]) -> Tensor {
        Tensor::cat(&grads.iter().zip(&self.orders).map(|(g, o)| flatten(g, o)).collect::<Vec<_>>(), 0)
    }
}

/// `t`'s elements in the memory order `order`.
fn flatten(t: &Tensor, order: &[i64]) -> Tensor {
    t.permute(order).reshape([-1])
}
