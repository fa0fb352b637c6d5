//! Network input conventions (`[x]` or `[x, labels]`, `z` as `[N, z_dim]`), checked before any
//! layer sees them, so a wrong shape is a one-line error naming the plugin, the network and the
//! expected shape instead of a libtorch panic. Shared by architecture plugins.
use tch::{Kind, Tensor};

/// The main input and, for conditional networks, the labels.
pub struct Inputs<'a> {
    pub main: &'a Tensor,
    pub labels: Option<&'a Tensor>,
}

/// Splits `[x]` or `[x, y]`. A conditional network requires `y`; an unconditional one ignores a
/// `y` it is given, so a core that always passes labels for labelled data still works.
pub fn split<'a>(plugin: &str, network: &str, inputs: &'a [Tensor], conditional: bool) -> Result<Inputs<'a>, String> {
    let expected = if conditional { "[input, labels]" } else { "[input]" };
    let (main, labels) = match inputs {
        [x] => (x, None),
        [x, y] => (x, Some(y)),
        _ => return Err(format!("{plugin} {network}: expected inputs {expected}, got {} tensors", inputs.len())),
    };
    if !conditional {
        return Ok(Inputs { main, labels: None });
    }
    let labels =
        labels.ok_or_else(|| format!("{plugin} {network} is conditional: expected inputs {expected}, got 1 tensor"))?;
    let n = main.size().first().copied().unwrap_or(0);
    if labels.size() != [n] || labels.kind() != Kind::Int64 {
        return Err(format!(
            "{plugin} {network}: labels must be int64 of shape [{n}], got {:?} of shape {:?}",
            labels.kind(),
            labels.size()
        ));
    }
    Ok(Inputs { main, labels: Some(labels) })
}

/// Accepts z as `[N, z_dim]` or `[N, z_dim, 1, 1]` and returns it as `[N, z_dim]`.
pub fn latent(plugin: &str, z: &Tensor, z_dim: i64) -> Result<Tensor, String> {
    let z = match z.size().as_slice() {
        [n, _, 1, 1] => z.reshape([*n, -1]),
        _ => z.shallow_clone(),
    };
    check_shape(plugin, "generator", "z", &z, &[z_dim])?;
    Ok(z)
}

/// Requires `x` to have shape `[N, rest...]` for some N.
pub fn check_shape(plugin: &str, network: &str, what: &str, x: &Tensor, rest: &[i64]) -> Result<(), String> {
    let size = x.size();
    if size.len() != rest.len() + 1 || size[1..] != *rest {
        let wanted: Vec<String> = rest.iter().map(i64::to_string).collect();
        return Err(format!("{plugin} {network}: {what} must have shape [N, {}], got {size:?}", wanted.join(", ")));
    }
    Ok(())
}
