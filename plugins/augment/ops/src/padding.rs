//! What a geometric operation shows where it reads outside the image.
use lab_plugin_api::tch::Tensor;

/// How pixels outside the image are filled by geometric operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Zeros (mid-grey in [-1, 1]); what DiffAugment's translation does.
    Zeros,
    /// The nearest edge pixel, repeated.
    Border,
    /// The image mirrored about its edges (the edge pixel repeated once, as libtorch's
    /// `grid_sample` reflects with `align_corners = false`); what ADA uses, since it adds no
    /// structure a discriminator could learn to look for.
    Reflection,
}

impl Padding {
    /// Every mode, in the order of [`Padding::name`]s shown to users.
    pub const ALL: [Padding; 3] = [Padding::Zeros, Padding::Border, Padding::Reflection];

    /// The word users write in TOML.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Zeros => "zeros",
            Padding::Border => "border",
            Padding::Reflection => "reflection",
        }
    }

    /// The mode named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// libtorch's `grid_sampler` code for this mode.
    pub(crate) fn grid_sampler_code(self) -> i64 {
        match self {
            Padding::Zeros => 0,
            Padding::Border => 1,
            Padding::Reflection => 2,
        }
    }

    /// Maps source positions `pos` (any integers, `i64`) along an axis of `len` pixels to valid
    /// indices, and says which positions were inside the image (only `Zeros` needs that).
    pub(crate) fn resolve(self, pos: &Tensor, len: i64) -> (Tensor, Option<Tensor>) {
        match self {
            Padding::Zeros => (pos.clamp(0, len - 1), Some(pos.ge(0).logical_and(&pos.lt(len)))),
            Padding::Border => (pos.clamp(0, len - 1), None),
            Padding::Reflection => {
                // Mirroring about both edges repeats with period 2·len; within a period the
                // second half runs backwards. `remainder` is non-negative for a positive divisor.
                let m = pos.remainder(2 * len);
                let mirrored = (2 * len - 1) - &m;
                (mirrored.where_self(&m.ge(len), &m), None)
            }
        }
    }
}

impl std::fmt::Display for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
