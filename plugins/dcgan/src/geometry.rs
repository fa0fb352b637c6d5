//! How feature maps grow in the generator and shrink in the discriminator at each supported
//! resolution. Both networks read the same plan, so they stay mirror images of each other.

/// The feature-map ladder for one resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Side of the smallest feature map: the generator's first, the discriminator's last.
    pub base_side: i64,
    /// Channel multipliers (of `g_channels` or `d_channels`) of the feature maps, smallest map
    /// first. Each step doubles the side and halves the channels; the final step to image
    /// channels is not listed.
    pub multipliers: Vec<i64>,
}

impl Geometry {
    /// The plan for a resolution already validated by the config:
    /// - 28: 4C@7 → 2C@14 → image@28 (MNIST-sized data cannot start from 4×4);
    /// - 32: 8C@4 → 4C@8 → 2C@16 → image@32;
    /// - 64: 8C@4 → 4C@8 → 2C@16 → C@32 → image@64 (Radford et al.'s original).
    pub fn for_resolution(resolution: i64) -> Self {
        let (base_side, multipliers) = match resolution {
            28 => (7, vec![4, 2]),
            32 => (4, vec![8, 4, 2]),
            64 => (4, vec![8, 4, 2, 1]),
            other => unreachable!("resolution {other} passed validation"),
        };
        Self { base_side, multipliers }
    }

    /// Channels of every feature map for a network of width `channels`, smallest map first.
    pub fn widths(&self, channels: i64) -> Vec<i64> {
        self.multipliers.iter().map(|m| m * channels).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_doubles_up_to_its_resolution() {
        for resolution in crate::config::SUPPORTED_RESOLUTIONS {
            let g = Geometry::for_resolution(resolution);
            let steps = g.multipliers.len() as u32;
            assert_eq!(g.base_side * 2i64.pow(steps), resolution);
        }
    }
}
