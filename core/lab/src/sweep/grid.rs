//! `--grid key=v1,v2,...` and `--seeds 0,1,2`: parsed, then expanded into the cartesian
//! product (first grid outermost, seeds innermost).
use super::SweepError;

/// One `--grid`: a config key and the values it takes, as written (TOML or bare words).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridAxis {
    pub key: String,
    pub values: Vec<String>,
}

impl GridAxis {
    /// Parses `data.fraction=1.0,0.2,0.1`. Commas inside brackets, braces or quotes do not
    /// split: `optim.betas=[0.0, 0.99],[0.5, 0.999]` is two values.
    pub fn parse(text: &str) -> Result<Self, SweepError> {
        let bad = |why: &str| SweepError::Grid { grid: text.to_string(), message: why.to_string() };
        let (key, values) =
            text.split_once('=').ok_or_else(|| bad("expected `key=v1,v2,...`, e.g. `--grid data.fraction=1.0,0.2`"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad("expected a dotted config key before `=`"));
        }
        if key == "seed" {
            return Err(bad("use `--seeds 0,1,2` for seeds"));
        }
        if key == "name" {
            return Err(bad("`name` is set by the sweep (one run group per member)"));
        }
        let values = split_top_level(values);
        if values.iter().any(String::is_empty) {
            return Err(bad("empty value; expected `key=v1,v2,...`"));
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(bad(&format!("value `{v}` is listed twice")));
            }
        }
        Ok(Self { key: key.to_string(), values })
    }
}

/// Splits at commas that are not inside `[]`, `{}` or quotes; trims each part.
fn split_top_level(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    for ch in text.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    parts.push(current.trim().to_string());
    parts
}

/// Parses `--seeds 0,1,2`.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, SweepError> {
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let seed: u64 = part.trim().parse().map_err(|_| SweepError::Grid {
            grid: format!("--seeds {text}"),
            message: "expected non-negative integers separated by commas, e.g. `--seeds 0,1,2`".into(),
        })?;
        if seeds.contains(&seed) {
            return Err(SweepError::Grid {
                grid: format!("--seeds {text}"),
                message: format!("seed {seed} is listed twice"),
            });
        }
        seeds.push(seed);
    }
    Ok(seeds)
}

/// Every combination, as `(key, value)` assignments; the seed last when seeds are given.
pub fn expand(axes: &[GridAxis], seeds: &[u64]) -> Vec<Vec<(String, String)>> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((axis.key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    if !seeds.is_empty() {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                seeds.iter().map(move |s| {
                    let mut c = c.clone();
                    c.push(("seed".to_string(), s.to_string()));
                    c
                })
            })
            .collect();
    }
    combos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_commas_only() {
        let g = GridAxis::parse("optim.betas=[0.0, 0.99],[0.5, 0.999]").unwrap();
        assert_eq!(g.values, ["[0.0, 0.99]", "[0.5, 0.999]"]);
        let g = GridAxis::parse("augment.config.policy=\"color,cutout\",translation").unwrap();
        assert_eq!(g.values, ["\"color,cutout\"", "translation"]);
        assert!(GridAxis::parse("data.fraction").is_err());
        assert!(GridAxis::parse("seed=1,2").is_err());
        assert!(GridAxis::parse("a=1,1").is_err());
    }

    #[test]
    fn expands_first_grid_outermost_and_seeds_innermost() {
        let axes = [GridAxis::parse("a=1,2").unwrap(), GridAxis::parse("b=x,y").unwrap()];
        let combos = expand(&axes, &[0, 1]);
        assert_eq!(combos.len(), 8);
        let first: Vec<String> = combos[0].iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(first, ["a=1", "b=x", "seed=0"]);
        let second: Vec<String> = combos[1].iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(second, ["a=1", "b=x", "seed=1"]);
        assert_eq!(expand(&[], &[]), vec![Vec::<(String, String)>::new()]);
    }
}
