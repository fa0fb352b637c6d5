//! The block plans of BigGAN-PyTorch's `G_arch` / `D_arch` tables, for the resolutions this
//! plugin supports. Each plan lists the residual blocks in order; the networks are built from it,
//! so adding a resolution means adding a plan here.

/// One residual block: its channels and whether it changes the resolution (G: 2× nearest
/// upsampling, D: 2×2 average pooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPlan {
    pub in_channels: i64,
    pub out_channels: i64,
    pub resample: bool,
}

/// The generator: side of the first feature map (z is projected to `blocks[0].in_channels` maps
/// of this side) and its upsampling blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorPlan {
    pub bottom_width: i64,
    pub blocks: Vec<BlockPlan>,
}

/// `arch[32]` of G: three blocks of `4·ch → 4·ch` channels, 4 → 8 → 16 → 32 pixels.
pub fn generator(resolution: i64, ch: i64) -> GeneratorPlan {
    assert_eq!(resolution, 32, "resolution {resolution} passed validation without a plan");
    let block = BlockPlan { in_channels: 4 * ch, out_channels: 4 * ch, resample: true };
    GeneratorPlan { bottom_width: 4, blocks: vec![block; 3] }
}

/// `arch[32]` of D: four blocks of `4·ch` output channels (the first reads the image); the first
/// two halve the side (32 → 16 → 8), the last two keep 8×8.
pub fn discriminator(resolution: i64, ch: i64, image_channels: i64) -> Vec<BlockPlan> {
    assert_eq!(resolution, 32, "resolution {resolution} passed validation without a plan");
    let c = 4 * ch;
    vec![
        BlockPlan { in_channels: image_channels, out_channels: c, resample: true },
        BlockPlan { in_channels: c, out_channels: c, resample: true },
        BlockPlan { in_channels: c, out_channels: c, resample: false },
        BlockPlan { in_channels: c, out_channels: c, resample: false },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_reaches_its_resolution() {
        for resolution in crate::config::SUPPORTED_RESOLUTIONS {
            let plan = generator(resolution, 64);
            let ups = plan.blocks.iter().filter(|b| b.resample).count() as u32;
            assert_eq!(plan.bottom_width * 2i64.pow(ups), resolution);
        }
    }

    #[test]
    fn blocks_chain_their_channels() {
        let g = generator(32, 64).blocks;
        let d = discriminator(32, 64, 3);
        for plan in [&g, &d] {
            assert!(plan.windows(2).all(|w| w[0].out_channels == w[1].in_channels));
        }
        assert_eq!(d[0].in_channels, 3);
    }
}
