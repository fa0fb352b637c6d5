//! The residual blocks of the ResNet GANs for 32×32 images (Miyato et al. 2018, Table 4, after
//! Gulrajani et al. 2017): `sngan` (sngan_projection's `resblocks.py`), `sagan` (StudioGAN's
//! `GenBlock`, `DiscOptBlock`, `DiscBlock`) and `biggan`'s discriminator (BigGAN-PyTorch's
//! `DBlock`). The three references run the same forward pass; they differ in how the layers
//! start and whether they are spectrally normalised, so each plugin builds the layers and hands
//! them over here.
use lab_plugin_api::tch::Tensor;

use crate::layers::{downsample, upsample, Conv2d};
use crate::norm::BatchNorm2d;

/// G's up-block: BN → ReLU → 2× nearest upsampling → 3×3 conv → BN → ReLU → 3×3 conv, plus the
/// upsampled input through a 1×1 conv (always learned: the block changes the resolution). The
/// batch norms are class-conditional when built with classes; `y` then holds the labels.
#[derive(Debug)]
pub struct UpBlock {
    pub bn1: BatchNorm2d,
    pub conv1: Conv2d,
    pub bn2: BatchNorm2d,
    pub conv2: Conv2d,
    pub conv_sc: Conv2d,
}

impl UpBlock {
    pub fn forward(&self, x: &Tensor, y: Option<&Tensor>, train: bool) -> Tensor {
        let h = self.conv1.forward(&upsample(&self.bn1.forward(x, y, train).relu()), train);
        let h = self.conv2.forward(&self.bn2.forward(&h, y, train).relu(), train);
        h + self.conv_sc.forward(&upsample(x), train)
    }
}

/// D's block: [ReLU →] 3×3 conv → ReLU → 3×3 conv [→ 2×2 average pooling], plus a shortcut, a
/// 1×1 conv when the block changes channels or resolution and the identity otherwise.
#[derive(Debug)]
pub struct DownBlock {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    /// Present when the block changes channels or resolution.
    pub conv_sc: Option<Conv2d>,
    /// The first block of D (`OptimizedBlock`, `DiscOptBlock`, BigGAN's block 0): no activation
    /// before conv1, since it sees the image, and a shortcut that pools before it convolves
    /// (cheaper on the image's 3 channels); the others convolve, then pool.
    pub first: bool,
    pub downsample: bool,
}

impl DownBlock {
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        // Out of place: the shortcut below must see x before the activation.
        let h = if self.first { x.shallow_clone() } else { x.relu() };
        let h = self.conv2.forward(&self.conv1.forward(&h, train).relu(), train);
        let h = if self.downsample { downsample(&h) } else { h };
        h + self.shortcut(x, train)
    }

    /// 1×1 convolutions and average pooling commute, so the order changes only cost and
    /// rounding; keeping the references' order keeps outputs comparable to theirs.
    fn shortcut(&self, x: &Tensor, train: bool) -> Tensor {
        let Some(conv) = &self.conv_sc else { return x.shallow_clone() };
        match (self.first, self.downsample) {
            (true, true) => conv.forward(&downsample(x), train),
            (false, true) => downsample(&conv.forward(x, train)),
            (_, false) => conv.forward(x, train),
        }
    }
}
