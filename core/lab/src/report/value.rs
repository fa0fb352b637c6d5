//! Config values as a report sees them: looked up by dotted key, written the way a spec writes
//! them, and compared so that `10` in a spec matches `cr_lambda = 10.0` in a run's config.
use std::cmp::Ordering;

/// The value at `a.b.c` in a config table.
pub fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// A value as a spec writes it: strings bare (`diffaugment`), everything else as TOML (`0.1`).
pub fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Parses spec text (`0.1`, `true`, `[1, 2]`) as TOML; anything else is a bare string.
pub fn parse(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Whether two values are the same setting: numbers by value (`10` = `10.0`), tables and
/// arrays element by element, everything else exactly.
pub fn same(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Array(x), toml::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// Whether the spec text `want` names the config value `v`.
pub fn matches(want: &str, v: &toml::Value) -> bool {
    same(&parse(want), v) || (v.is_str() && v.as_str() == Some(want))
}

/// Orders values for rows and columns that have no `names`: numbers by value, the rest by text.
pub fn order(a: &toml::Value, b: &toml::Value) -> Ordering {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => display(a).cmp(&display(b)),
    }
}

/// Every leaf of a table as `(dotted key, value)`; arrays are leaves.
pub fn flatten(table: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
        for (k, v) in table {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                other => out.push((key, other.clone())),
            }
        }
    }
    walk("", table, &mut out);
    out
}

/// Whether `key` is `section` itself or inside it (`log.every` is in `log`).
pub fn within(key: &str, section: &str) -> bool {
    key == section || key.strip_prefix(section).is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn numbers_match_by_value_and_strings_by_text() {
        let t = table("[loss.config]\ncr_lambda = 10.0\n[augment]\nname = \"none\"\n[data]\nfraction = 0.1");
        assert!(matches("10", lookup(&t, "loss.config.cr_lambda").unwrap()));
        assert!(matches("10.0", lookup(&t, "loss.config.cr_lambda").unwrap()));
        assert!(!matches("1", lookup(&t, "loss.config.cr_lambda").unwrap()));
        assert!(matches("none", lookup(&t, "augment.name").unwrap()));
        assert!(matches("0.1", lookup(&t, "data.fraction").unwrap()));
        assert_eq!(display(lookup(&t, "data.fraction").unwrap()), "0.1");
        assert!(lookup(&t, "data.nothing").is_none());
    }

    #[test]
    fn sections_contain_their_keys() {
        assert!(within("log.every", "log"));
        assert!(within("log", "log"));
        assert!(!within("logger", "log"));
    }
}
