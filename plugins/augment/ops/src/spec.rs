//! Pipeline entries as users write them in TOML, and back:
//!
//! ```toml
//! pipeline = [{ op = "hflip", p = 0.5 }, { op = "rotate", p = 0.3, degrees = 15.0 }, "cutout"]
//! ```
//!
//! An entry is a table with `op`, an optional `p` (default 1) and that operation's parameters
//! (each optional, defaults in [`crate::op`]); a bare string is an operation with all defaults.
//! Every error names the entry and key (`pipeline[1].degrees`), what was expected, and the
//! valid choices, with a suggestion for a likely typo.
use lab_plugin_api::config::{did_you_mean, type_name};
use toml::{Table, Value};

use crate::{Op, Padding, Step};

/// Parses the entries of the array at `key` (e.g. `pipeline`).
pub fn parse_steps(key: &str, entries: &[Value]) -> lab_plugin_api::Result<Vec<Step>> {
    entries.iter().enumerate().map(|(i, entry)| parse_step(&format!("{key}[{i}]"), entry)).collect()
}

/// The TOML entries that [`parse_steps`] reads back as `steps`, every parameter written out.
pub fn to_toml(steps: &[Step]) -> Vec<Value> {
    steps.iter().map(step_to_toml).collect()
}

/// Parses one entry; `path` (e.g. `pipeline[2]`) prefixes every error.
pub fn parse_step(path: &str, entry: &Value) -> lab_plugin_api::Result<Step> {
    let given = match entry {
        Value::Table(t) => t.clone(),
        Value::String(name) => Table::from_iter([("op".to_string(), Value::String(name.clone()))]),
        other => {
            return Err(lab_plugin_api::Error::new(format!(
                "`{path}`: expected a table such as {{ op = \"hflip\", p = 0.5 }} or an op name, found {}",
                type_name(other)
            )))
        }
    };
    let name = match given.get("op") {
        Some(Value::String(name)) => name.as_str(),
        Some(other) => {
            return Err(lab_plugin_api::Error::new(format!(
                "`{path}.op`: expected an op name (a string), found {}",
                type_name(other)
            )))
        }
        None => {
            return Err(lab_plugin_api::Error::new(format!(
                "`{path}`: missing `op`; valid ops: {}",
                Op::NAMES.join(", ")
            )))
        }
    };
    let Some(default) = Op::default_for(name) else {
        return Err(lab_plugin_api::Error::new(format!(
            "`{path}.op`: unknown op `{name}`; {}valid ops: {}",
            hint(name, Op::NAMES),
            Op::NAMES.join(", ")
        )));
    };
    let entry = Entry::new(path, &default, given)?;
    let p = entry.number_in("p", 0.0, 1.0)?;
    Ok(Step { op: entry.op(&default)?, p })
}

fn step_to_toml(step: &Step) -> Value {
    let mut table = Table::new();
    table.insert("op".into(), Value::String(step.op.name().into()));
    table.insert("p".into(), Value::Float(step.p));
    for (key, value) in params(&step.op) {
        table.insert(key.into(), value);
    }
    Value::Table(table)
}

/// An operation's parameters as TOML values; their keys are the keys the operation accepts.
fn params(op: &Op) -> Vec<(&'static str, Value)> {
    let pad = |p: &Padding| ("padding", Value::String(p.name().into()));
    let pair = |v: &[f64; 2]| Value::Array(vec![Value::Float(v[0]), Value::Float(v[1])]);
    match op {
        Op::Hflip | Op::Rotate90 => vec![],
        Op::Translate { ratio, padding } | Op::SubpixelTranslate { ratio, padding } => {
            vec![("ratio", Value::Float(*ratio)), pad(padding)]
        }
        Op::Rotate { degrees, padding } => vec![("degrees", Value::Float(*degrees)), pad(padding)],
        Op::Scale { min, max, padding } | Op::Aniso { min, max, padding } => {
            vec![("min", Value::Float(*min)), ("max", Value::Float(*max)), pad(padding)]
        }
        Op::Crop { scale, ratio, padding } => vec![("scale", pair(scale)), ("ratio", pair(ratio)), pad(padding)],
        Op::Brightness { max } => vec![("max", Value::Float(*max))],
        Op::Saturation { min, max } | Op::Contrast { min, max } => {
            vec![("min", Value::Float(*min)), ("max", Value::Float(*max))]
        }
        Op::Noise { std } => vec![("std", Value::Float(*std))],
        Op::Cutout { ratio } => vec![("ratio", Value::Float(*ratio))],
    }
}

/// One entry's values (the user's over the operation's defaults), read with errors that name
/// `path.key`.
struct Entry<'a> {
    path: &'a str,
    values: Table,
}

impl<'a> Entry<'a> {
    /// Checks the given keys against those `default` accepts, and fills in the rest.
    fn new(path: &'a str, default: &Op, given: Table) -> lab_plugin_api::Result<Self> {
        let mut values: Table = params(default).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        values.insert("p".into(), Value::Float(1.0));
        let mut valid: Vec<&str> = vec!["op"];
        valid.extend(values.keys().map(String::as_str));
        for key in given.keys() {
            if !valid.contains(&key.as_str()) {
                return Err(lab_plugin_api::Error::new(format!(
                    "`{path}.{key}`: op `{}` has no parameter `{key}`; {}valid keys: {}",
                    default.name(),
                    hint(key, valid.iter().copied()),
                    valid.join(", ")
                )));
            }
        }
        values.extend(given);
        Ok(Self { path, values })
    }

    fn error(&self, key: &str, expected: &str) -> lab_plugin_api::Error {
        lab_plugin_api::Error::new(format!("`{}.{key}`: expected {expected}, found {}", self.path, self.values[key]))
    }

    fn number(&self, key: &str) -> lab_plugin_api::Result<f64> {
        match &self.values[key] {
            Value::Float(v) if v.is_finite() => Ok(*v),
            Value::Integer(v) => Ok(*v as f64),
            _ => Err(self.error(key, "a finite number")),
        }
    }

    /// A number in `[low, high]`.
    fn number_in(&self, key: &str, low: f64, high: f64) -> lab_plugin_api::Result<f64> {
        let v = self.number(key)?;
        if !(low..=high).contains(&v) {
            let range = if high.is_infinite() { format!(">= {low}") } else { format!("in [{low}, {high}]") };
            return Err(self.error(key, &format!("a number {range}")));
        }
        Ok(v)
    }

    /// `(min, max)` with `lower < min` (or `<=` when `min_may_equal`) and `min <= max`.
    fn ordered(
        &self,
        min_key: &str,
        max_key: &str,
        lower: f64,
        min_may_equal: bool,
    ) -> lab_plugin_api::Result<(f64, f64)> {
        let (min, max) = (self.number(min_key)?, self.number(max_key)?);
        let ok = if min_may_equal { min >= lower } else { min > lower };
        if !ok {
            let bound = if min_may_equal { ">=" } else { ">" };
            return Err(self.error(min_key, &format!("a number {bound} {lower}")));
        }
        if min > max {
            return Err(lab_plugin_api::Error::new(format!(
                "`{}`: `{min_key}` ({min}) must not exceed `{max_key}` ({max})",
                self.path
            )));
        }
        Ok((min, max))
    }

    /// A `[low, high]` pair with `0 < low <= high` (and `high <= cap`).
    fn pair(&self, key: &str, cap: f64) -> lab_plugin_api::Result<[f64; 2]> {
        let bound = if cap.is_infinite() { String::new() } else { format!(" <= {cap}") };
        let expected = format!("a pair [low, high] with 0 < low <= high{bound}");
        let Value::Array(items) = &self.values[key] else { return Err(self.error(key, &expected)) };
        let numbers: Vec<f64> = items
            .iter()
            .filter_map(|v| match v {
                Value::Float(f) => Some(*f),
                Value::Integer(i) => Some(*i as f64),
                _ => None,
            })
            .collect();
        match numbers[..] {
            [low, high] if items.len() == 2 && 0.0 < low && low <= high && high <= cap => Ok([low, high]),
            _ => Err(self.error(key, &expected)),
        }
    }

    fn padding(&self) -> lab_plugin_api::Result<Padding> {
        let names: Vec<&str> = Padding::ALL.iter().map(|p| p.name()).collect();
        match &self.values["padding"] {
            Value::String(s) => Padding::from_name(s).ok_or_else(|| {
                lab_plugin_api::Error::new(format!(
                    "`{}.padding`: unknown padding `{s}`; {}valid: {}",
                    self.path,
                    hint(s, names.clone()),
                    names.join(", ")
                ))
            }),
            _ => Err(self.error("padding", &format!("one of {}", names.join(", ")))),
        }
    }

    /// The operation `default` is, with this entry's parameters.
    fn op(&self, default: &Op) -> lab_plugin_api::Result<Op> {
        let unbounded = f64::INFINITY;
        Ok(match default {
            Op::Hflip => Op::Hflip,
            Op::Rotate90 => Op::Rotate90,
            Op::Translate { .. } => {
                Op::Translate { ratio: self.number_in("ratio", 0.0, 1.0)?, padding: self.padding()? }
            }
            Op::SubpixelTranslate { .. } => {
                Op::SubpixelTranslate { ratio: self.number_in("ratio", 0.0, 1.0)?, padding: self.padding()? }
            }
            Op::Rotate { .. } => {
                Op::Rotate { degrees: self.number_in("degrees", 0.0, 180.0)?, padding: self.padding()? }
            }
            Op::Scale { .. } => {
                let (min, max) = self.ordered("min", "max", 0.0, false)?;
                Op::Scale { min, max, padding: self.padding()? }
            }
            Op::Aniso { .. } => {
                let (min, max) = self.ordered("min", "max", 0.0, false)?;
                Op::Aniso { min, max, padding: self.padding()? }
            }
            Op::Crop { .. } => Op::Crop {
                scale: self.pair("scale", 1.0)?,
                ratio: self.pair("ratio", unbounded)?,
                padding: self.padding()?,
            },
            Op::Brightness { .. } => Op::Brightness { max: self.number_in("max", 0.0, unbounded)? },
            Op::Saturation { .. } => {
                let (min, max) = self.ordered("min", "max", 0.0, true)?;
                Op::Saturation { min, max }
            }
            Op::Contrast { .. } => {
                let (min, max) = self.ordered("min", "max", 0.0, true)?;
                Op::Contrast { min, max }
            }
            Op::Noise { .. } => Op::Noise { std: self.number_in("std", 0.0, unbounded)? },
            Op::Cutout { .. } => Op::Cutout { ratio: self.number_in("ratio", 0.0, 1.0)? },
        })
    }
}

/// "did you mean `x`? " when `given` looks like a typo of one of `valid`, else nothing.
fn hint<'a>(given: &str, valid: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(given, valid).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default()
}
