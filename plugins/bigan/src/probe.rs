//! How good an encoder's features are: the 1-nearest-neighbour classifier (Euclidean distance)
//! with labelled training features as its memory, the probe BiGAN's paper reports (Table 1), and
//! a linear probe (logistic regression), which a random projection does not flatter.
use lab_nn::prelude::*;
use lab_plugin_api::tch::nn::OptimizerConfig;

/// The share of `query` rows whose nearest `memory` row has the same label. Distances are
/// computed `chunk` query rows at a time, so memory stays bounded.
pub fn nearest_neighbour_accuracy(
    memory: &Tensor,
    memory_labels: &Tensor,
    query: &Tensor,
    query_labels: &Tensor,
) -> f64 {
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
        correct += predicted
            .eq_tensor(&query_labels.narrow(0, start, len))
            .to_kind(Kind::Double)
            .sum(Kind::Double)
            .double_value(&[]);
        start += len;
    }
    correct / n.max(1) as f64
}

/// The linear probe: multinomial logistic regression on standardised features (each feature
/// centred and scaled by its training mean and standard deviation), fitted to the memory by
/// `iterations` full-batch Adam steps (lr 0.05) from zero weights, scored on the query. No
/// randomness: the same features give the same accuracy.
pub fn linear_probe_accuracy(
    memory: &Tensor,
    memory_labels: &Tensor,
    query: &Tensor,
    query_labels: &Tensor,
    iterations: i64,
) -> f64 {
    let classes = memory_labels.max().int64_value(&[]).max(query_labels.max().int64_value(&[])) + 1;
    let memory = memory.to_kind(Kind::Float).detach();
    let mean = memory.mean_dim(0, true, Kind::Float);
    let std = memory.std_dim(0, false, true).clamp_min(1e-6);
    let standardise = |x: &Tensor| (x.to_kind(Kind::Float).detach() - &mean) / &std;
    let x = standardise(&memory);
    let vs = nn::VarStore::new(x.device());
    let linear = nn::linear(
        vs.root(),
        x.size()[1],
        classes,
        nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true },
    );
    let mut adam = nn::Adam::default().build(&vs, 0.05).expect("Adam over a VarStore");
    for _ in 0..iterations {
        let loss = x.apply(&linear).cross_entropy_for_logits(memory_labels);
        adam.backward_step(&loss);
    }
    tch::no_grad(|| {
        let predicted = standardise(query).apply(&linear).argmax(1, false);
        predicted.eq_tensor(query_labels).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
    })
}
