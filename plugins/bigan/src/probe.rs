//! How good an encoder's features are, without training anything: the 1-nearest-neighbour
//! classifier (Euclidean distance) with labelled training features as its memory, the probe
//! BiGAN's paper reports (Table 1).
use lab_nn::prelude::*;

/// The share of `query` rows whose nearest `memory` row has the same label. Distances are
/// computed `chunk` query rows at a time, so memory stays bounded.
pub fn nearest_neighbour_accuracy(memory: &Tensor, memory_labels: &Tensor, query: &Tensor, query_labels: &Tensor) -> f64 {
    let chunk = 1000;
    let memory = memory.to_kind(Kind::Float);
    let memory_norms = memory.square().sum_dim_intlist(1, false, Kind::Float).unsqueeze(0);
    let n = query.size()[0];
    let mut correct = 0.0;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let q = query.narrow(0, start, len).to_kind(Kind::Float);
        // ‖q − m‖² up to ‖q‖², which does not change the argmin over m.
        let distance = &memory_norms - q.matmul(&memory.tr()) * 2.0;
        let nearest = distance.argmin(1, false);
        let predicted = memory_labels.index_select(0, &nearest);
        correct += predicted.eq_tensor(&query_labels.narrow(0, start, len)).to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
        start += len;
    }
    correct / n.max(1) as f64
}
