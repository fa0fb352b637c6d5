//! Evaluation protocols as a report compares and states them. Two runs share a protocol when
//! every field that changes a metric's value agrees: sample count, reference set, feature
//! network (by sha256), resize rule and the metric's own settings. Local paths, batch sizes and
//! where FID's reference statistics came from do not change values and are not compared.
use std::collections::BTreeMap;

use serde_json::Value;

/// Leaf names that never change a value.
const INCIDENTAL: &[&str] =
    &["path", "batch_size", "matrix_sqrt", "source", "real_images_ignored", "fid_reference_stats", "seconds"];

/// The comparable fields of a protocol, flattened to dotted keys.
#[derive(Clone, Debug)]
pub struct Protocol {
    pub fields: BTreeMap<String, String>,
    pub raw: Value,
}

/// The metric plugins whose protocol matters for values named `names`: `is_std` comes from
/// the `is` plugin. When no plugin matches a name, every plugin's protocol is kept.
fn relevant_plugins(raw: &Value, names: &[String]) -> Vec<String> {
    let Some(metrics) = raw.get("metrics").and_then(Value::as_object) else { return Vec::new() };
    let mut keep = Vec::new();
    for name in names {
        let plugin =
            metrics.keys().filter(|p| name == *p || name.starts_with(&format!("{p}_"))).max_by_key(|p| p.len());
        match plugin {
            Some(p) => keep.push(p.clone()),
            None => return metrics.keys().cloned().collect(),
        }
    }
    keep.sort();
    keep.dedup();
    keep
}

impl Protocol {
    /// The protocol of `raw` (a summary's `eval.final.protocol`) for the metrics `names`.
    pub fn new(raw: &Value, names: &[String]) -> Self {
        let plugins = relevant_plugins(raw, names);
        let mut fields = BTreeMap::new();
        flatten("", raw, &mut fields);
        fields.retain(|k, _| match k.strip_prefix("metrics.") {
            Some(rest) => plugins.iter().any(|p| rest.starts_with(&format!("{p}."))),
            // What an architecture measures about itself (and how long it took) belongs to the
            // row's model, not to the protocol its samples were scored by.
            None => !k.starts_with("model."),
        });
        Self { fields, raw: raw.clone() }
    }

    /// `key = value` for every field where `self` and `other` differ, from `self`'s side.
    pub fn differences(&self, other: &Protocol) -> Vec<String> {
        let keys: std::collections::BTreeSet<&String> = self.fields.keys().chain(other.fields.keys()).collect();
        keys.into_iter()
            .filter(|k| self.fields.get(*k) != other.fields.get(*k))
            .map(|k| format!("{k} = {}", self.fields.get(k).map(String::as_str).unwrap_or("(absent)")))
            .collect()
    }

    /// One paragraph for a table's footnote: samples, reference set, feature network with its
    /// sha256, resize rule, and the metrics' own settings.
    pub fn describe(&self, names: &[String]) -> String {
        let raw = &self.raw;
        let s = |v: Option<&Value>| v.map(scalar).unwrap_or_else(|| "?".into());
        let mut parts = Vec::new();
        let samples = s(raw.get("num_samples"));
        let reference = raw.get("reference");
        let set = format!(
            "{} images of the {} `{}` split",
            s(reference.and_then(|r| r.get("count"))),
            s(reference.and_then(|r| r.get("dataset"))),
            s(reference.and_then(|r| r.get("split"))),
        );
        let sampled = raw.get("num_samples").and_then(Value::as_u64).unwrap_or(0) > 0;
        match raw.get("model").and_then(|m| m.get("architecture")) {
            // No metric plugin drew samples: the architecture measured itself (a translation
            // model on the test pairs), running its networks as its own evaluation does.
            Some(architecture) if !sampled => {
                parts.push(format!("measured by the `{}` architecture itself on the {set}", scalar(architecture)))
            }
            _ => {
                parts.push(format!("{samples} generated samples vs {set}"));
                if let Some(g) = raw.get("generator").and_then(Value::as_str) {
                    parts.push(format!("generator: {g}"));
                }
            }
        }
        // Group metrics by feature network, so a shared network is stated once.
        let mut by_network: Vec<(String, Vec<String>)> = Vec::new();
        let mut settings = Vec::new();
        for plugin in relevant_plugins(raw, names) {
            let Some(p) = raw.get("metrics").and_then(|m| m.get(&plugin)) else { continue };
            if let Some(f) = p.get("features") {
                let network = format!(
                    "feature network `{}` (sha256 {}), resize: {}",
                    s(f.get("file")),
                    s(f.get("sha256")),
                    s(f.get("resize"))
                );
                match by_network.iter_mut().find(|(n, _)| *n == network) {
                    Some((_, ms)) => ms.push(plugin.clone()),
                    None => by_network.push((network, vec![plugin.clone()])),
                }
            }
            if let Some(splits) = p.get("splits") {
                settings.push(format!("{plugin}: {} splits", scalar(splits)));
            }
        }
        for (network, metrics) in by_network {
            parts.push(format!("{}: {network}", metrics.join(", ")));
        }
        parts.extend(settings);
        parts.join("; ")
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if INCIDENTAL.contains(&k.as_str()) {
                    continue;
                }
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_architecture_that_measured_itself_is_named_instead_of_a_sample_count() {
        let raw = serde_json::json!({"num_samples": 0, "generator": "EMA generator in eval mode",
            "reference": {"count": 1000, "dataset": "edges2fashion", "split": "test"}, "metrics": {},
            "model": {"architecture": "pix2pix", "measures": ["translation/l1"]}});
        assert_eq!(
            Protocol::new(&raw, &["translation/l1".into()]).describe(&["translation/l1".into()]),
            "measured by the `pix2pix` architecture itself on the 1000 images of the edges2fashion `test` split"
        );
        // With samples (a metric plugin ran beside the measures) the sample count stays.
        let mut sampled = raw.clone();
        sampled["num_samples"] = 2000.into();
        let text = Protocol::new(&sampled, &[]).describe(&[]);
        assert!(text.starts_with("2000 generated samples vs 1000 images"), "{text}");
    }

    #[test]
    fn paths_do_not_count_but_sample_counts_do() {
        let a = serde_json::json!({"num_samples": 10000, "reference": {"split": "test", "fid_reference_stats": "/a"},
            "metrics": {"fid": {"features": {"sha256": "x", "path": "/a/net.pt"}}, "kid": {"subsets": 100}}});
        let b = serde_json::json!({"num_samples": 10000, "reference": {"split": "test", "fid_reference_stats": "/b"},
            "metrics": {"fid": {"features": {"sha256": "x", "path": "/b/net.pt"}}, "kid": {"subsets": 10}}});
        let names = vec!["fid".to_string()];
        assert_eq!(Protocol::new(&a, &names).fields, Protocol::new(&b, &names).fields);
        let c = serde_json::json!({"num_samples": 5000, "reference": {"split": "test"}, "metrics": {"fid": {"features": {"sha256": "y"}}}});
        assert_eq!(
            Protocol::new(&a, &names).differences(&Protocol::new(&c, &names)),
            ["metrics.fid.features.sha256 = \"x\"", "num_samples = 10000"]
        );
    }
}
