//! Metrics under test: created through the descriptor, streamed through the core's handle.
use lab_plugin_api::host::{into_result, Factory, Metric};
use lab_plugin_api::tch::Tensor;
use lab_plugin_api::{DataSpec, MetricPlugin, Result, Value};

use crate::cpu_env;

/// Creates metric `P` from `config` (the TOML of its `[[eval.metrics]]` entry) as the core does.
pub fn create<P: MetricPlugin>(config: &str, data: DataSpec) -> Result<Metric> {
    let Factory::Metric(create) = lab_plugin_api::metric::descriptor::<P>("test").factory else {
        unreachable!("a metric descriptor holds a metric factory")
    };
    let obj = into_result(create(config.into(), cpu_env(data)))?;
    // SAFETY: the factory is compiled into this test binary, so its code outlives the handle.
    Ok(unsafe { Metric::from_raw(obj) })
}

/// One evaluation as the core runs it: reset, every real batch, every generated batch, compute.
pub fn evaluate(metric: &mut Metric, real: &[Tensor], fake: &[Tensor]) -> Result<Vec<Value>> {
    metric.reset()?;
    for x in real {
        metric.update(x, false)?;
    }
    for x in fake {
        metric.update(x, true)?;
    }
    metric.compute()
}

/// [`evaluate`] with each batch's class labels, as the core passes them (interface 2.2).
pub fn evaluate_labelled(
    metric: &mut Metric,
    real: &[(Tensor, Option<Tensor>)],
    fake: &[(Tensor, Option<Tensor>)],
) -> Result<Vec<Value>> {
    metric.reset()?;
    for (x, y) in real {
        metric.update_labelled(x, y.as_ref(), false)?;
    }
    for (x, y) in fake {
        metric.update_labelled(x, y.as_ref(), true)?;
    }
    metric.compute()
}

/// Feeds the training set to a metric that asks for it, as the core does once before the first
/// evaluation (interface 2.4); returns whether it asked.
pub fn feed_training_set(metric: &mut Metric, batches: &[(Tensor, Option<Tensor>)]) -> Result<bool> {
    if !metric.wants_training_set()? {
        return Ok(false);
    }
    for (x, y) in batches {
        metric.update_training(x, y.as_ref())?;
    }
    Ok(true)
}

/// The value called `name` in `values`.
pub fn value(values: &[Value], name: &str) -> f64 {
    values.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no value `{name}` in {values:?}")).value
}
