//! Plugin configs cross the boundary as TOML text; this parses them on the plugin side with
//! errors that name the key, what was expected, and the closest valid key.
use serde::{de::DeserializeOwned, Serialize};
use toml::{Table, Value};

use crate::error::Error;

/// The default config of `C`, as TOML.
pub fn default_toml<C: Serialize + Default>() -> String {
    toml::to_string(&C::default()).unwrap_or_default()
}

/// "a string", "an integer", ...: a TOML value's type, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn compatible(expected: &Value, found: &Value) -> bool {
    matches!(
        (expected, found),
        (Value::String(_), Value::String(_))
            | (Value::Integer(_), Value::Integer(_))
            | (Value::Float(_), Value::Float(_) | Value::Integer(_))
            | (Value::Boolean(_), Value::Boolean(_))
            | (Value::Array(_), Value::Array(_))
            | (Value::Table(_), Value::Table(_))
    )
}

/// The closest of `candidates` to `key`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(key, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn check_keys(prefix: &str, given: &Table, defaults: &Table) -> Result<(), Error> {
    for (key, value) in given {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match defaults.get(key) {
            None => {
                let mut valid: Vec<&str> = defaults.keys().map(String::as_str).collect();
                valid.sort_unstable();
                let hint = match did_you_mean(key, valid.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? "),
                    None => String::new(),
                };
                return Err(Error::config(
                    path,
                    format!("not a key of this plugin; {hint}valid keys: {}", valid.join(", ")),
                ));
            }
            Some(Value::Table(d)) => {
                if let Value::Table(g) = value {
                    check_keys(&path, g, d)?;
                } else {
                    return Err(Error::config(path, format!("expected a table, found {}", type_name(value))));
                }
            }
            Some(expected) if !compatible(expected, value) => {
                return Err(Error::config(
                    path,
                    format!("expected {}, found {} (default: {expected})", type_name(expected), type_name(value)),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Parses a plugin config: unknown keys and wrong types are refused with a readable message.
pub fn parse<C: Serialize + DeserializeOwned + Default>(text: &str) -> Result<C, Error> {
    let given: Table =
        toml::from_str(text).map_err(|e| Error::new(format!("config is not valid TOML: {}", e.message())))?;
    let defaults = Table::try_from(C::default()).map_err(|e| Error::new(e.to_string()))?;
    check_keys("", &given, &defaults)?;
    // Fill in defaults first, so serde only ever sees complete configs of the right shape.
    let mut merged = defaults;
    merge(&mut merged, given);
    merged.try_into::<C>().map_err(|e| Error::new(e.message().trim()))
}

/// Shared validators for the checks many plugins make; each names the key and says what was
/// expected, so every plugin's errors read alike.
pub mod check {
    use crate::error::Error;

    /// An integer of at least 1.
    pub fn positive(key: &str, value: i64) -> Result<i64, Error> {
        if value > 0 {
            Ok(value)
        } else {
            Err(Error::config(key, format!("expected a positive integer, found {value}")))
        }
    }

    /// An integer of at least `min`.
    pub fn at_least(key: &str, value: i64, min: i64) -> Result<i64, Error> {
        if value >= min {
            Ok(value)
        } else {
            Err(Error::config(key, format!("expected an integer >= {min}, found {value}")))
        }
    }

    /// A finite number of at least 0; `meaning_of_zero` is said in the message, e.g. "0 turns it off".
    pub fn non_negative(key: &str, value: f64, meaning_of_zero: &str) -> Result<f64, Error> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(Error::config(key, format!("expected a finite number >= 0 ({meaning_of_zero}), found {value}")))
        }
    }

    /// One of the `allowed` words.
    pub fn one_of<'a>(key: &str, value: &'a str, allowed: &[&str]) -> Result<&'a str, Error> {
        if allowed.contains(&value) {
            return Ok(value);
        }
        let list = match allowed {
            [] => String::new(),
            [one] => one.to_string(),
            [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        };
        let hint = super::did_you_mean(value, allowed.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(Error::config(key, format!("expected {list}, found {value:?}{hint}")))
    }

    /// A number in [0, 1].
    pub fn unit_interval(key: &str, value: f64) -> Result<f64, Error> {
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(Error::config(key, format!("expected a number in [0, 1], found {value}")))
        }
    }
}

fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Cfg {
        channels: i64,
        lr: f64,
        norm: String,
    }

    #[test]
    fn unknown_key_suggests() {
        let err = parse::<Cfg>("chanels = 3").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("chanels"));
        assert_eq!(err.message, "not a key of this plugin; did you mean `channels`? valid keys: channels, lr, norm");
    }

    #[test]
    fn wrong_type_names_key() {
        let err = parse::<Cfg>("channels = \"many\"").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("channels"));
        assert_eq!(err.message, "expected an integer, found a string (default: 0)");
    }

    #[test]
    fn validators_name_the_key_and_what_was_expected() {
        assert_eq!(check::positive("g_ch", 0).unwrap_err(), "key `g_ch`: expected a positive integer, found 0");
        assert_eq!(check::at_least("k", 2, 3).unwrap_err(), "key `k`: expected an integer >= 3, found 2");
        assert_eq!(
            check::non_negative("r1_gamma", -1.0, "0 turns it off").unwrap_err(),
            "key `r1_gamma`: expected a finite number >= 0 (0 turns it off), found -1"
        );
        assert!(check::non_negative("x", f64::NAN, "off").is_err());
        assert_eq!(check::unit_interval("p", 1.5).unwrap_err(), "key `p`: expected a number in [0, 1], found 1.5");
        assert_eq!(check::positive("n", 3), Ok(3));
    }

    #[test]
    fn integers_are_accepted_as_floats() {
        let c = parse::<Cfg>("lr = 1\nnorm = \"bn\"").unwrap();
        assert_eq!(c, Cfg { channels: 0, lr: 1.0, norm: "bn".into() });
    }
}
