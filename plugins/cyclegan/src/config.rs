//! `[model.config]` of the `cyclegan` architecture and `[loss.config]` of the `cyclegan` loss,
//! with the official defaults (junyanz/pytorch-CycleGAN-and-pix2pix, `train_options.py` and
//! `cycle_gan_model.py`), and the checks on them.
use lab_nn::prelude::*;
use lab_nn::Norm;
use lab_plugin_api::Error;

/// `[model.config]` of `cyclegan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CycleGanConfig {
    /// Filters of the generators' first layer (`--ngf`); the residual blocks have 4·ngf.
    pub ngf: i64,
    /// Filters of the discriminators' first layer (`--ndf`).
    pub ndf: i64,
    /// Residual blocks of each generator: 9 for 256² (`resnet_9blocks`), 6 for 128².
    pub n_blocks: i64,
    /// Stride-2 layers of the PatchGAN discriminators after the first (`--n_layers_D`; 3 is
    /// the 70×70 PatchGAN).
    pub d_layers: i64,
    /// `instance` (CycleGAN's default, without affine parameters) or `batch`.
    pub norm: Norm,
    /// Whether evaluation steps measure the translations (`measures`): cycle L1, a domain
    /// classifier's verdict on translated images and, with `features`, FID per direction. Off,
    /// evaluation runs only the configured metrics.
    pub measure: bool,
    /// TorchScript feature network for the per-direction FIDs (the metrics' calling convention:
    /// uint8 NCHW in, features out with `forward(images, true)`); "" skips the FIDs.
    pub features: String,
    /// Images of each evaluation split the measures use; 0 = all of them.
    pub eval_images: i64,
    /// Training steps of the domain classifier that judges translations (trained once per
    /// run, on the training images of both domains, seeded).
    pub classifier_steps: i64,
    /// Training images per domain the classifier learns from; 0 = all of them.
    pub classifier_images: i64,
}

impl Default for CycleGanConfig {
    fn default() -> Self {
        Self {
            ngf: 64,
            ndf: 64,
            n_blocks: 9,
            d_layers: 3,
            norm: Norm::Instance,
            measure: true,
            features: String::new(),
            eval_images: 0,
            classifier_steps: 300,
            classifier_images: 2000,
        }
    }
}

impl CycleGanConfig {
    /// Every rule on the values, in one place.
    pub fn validate(&self, data: &DataSpec) -> Result<()> {
        check::positive("ngf", self.ngf)?;
        check::positive("ndf", self.ndf)?;
        check::at_least("n_blocks", self.n_blocks, 0)?;
        check::positive("d_layers", self.d_layers)?;
        check::at_least("eval_images", self.eval_images, 0)?;
        check::positive("classifier_steps", self.classifier_steps)?;
        check::at_least("classifier_images", self.classifier_images, 0)?;
        // Two stride-2 downsamplings and two exact doublings give back the input's size only
        // when it is a multiple of 4.
        if data.height % 4 != 0 || data.width % 4 != 0 || data.height < 8 || data.width < 8 {
            return Err(Error::config(
                "data.image_size",
                format!(
                    "the ResNet generator needs a side that is a multiple of 4 and at least 8; the data is {}×{} \
                     (set data.image_size to e.g. 32, 128 or 256)",
                    data.height, data.width
                ),
            ));
        }
        // Each stride-2 PatchGAN layer halves the side and the two stride-1 4×4 layers take 3
        // pixels off, which must leave a logit map of at least 1×1.
        let smallest = data.height.min(data.width);
        if self.d_layers >= 31 || smallest >> self.d_layers < 3 {
            return Err(Error::config(
                "d_layers",
                format!(
                    "a PatchGAN with {} stride-2 layers needs images of at least {} pixels a side; the data's are {smallest} \
                     (lower d_layers, or raise data.image_size)",
                    self.d_layers,
                    3i64 << self.d_layers.min(30)
                ),
            ));
        }
        Ok(())
    }
}

/// `[loss.config]` of `cyclegan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CycleGanLossConfig {
    /// Weight of the cycle loss A → B → A (`--lambda_A`).
    pub lambda_a: f64,
    /// Weight of the cycle loss B → A → B (`--lambda_B`).
    pub lambda_b: f64,
    /// The identity loss's weight relative to the cycle weights (`--lambda_identity`): G_AB(B)
    /// should stay B with weight λ_B·λ_idt, G_BA(A) stay A with λ_A·λ_idt. 0 turns it off.
    pub lambda_identity: f64,
    /// Generated images each discriminator's pool keeps (`--pool_size`); 0: no pool, D sees
    /// the latest fakes only.
    pub pool_size: i64,
}

impl Default for CycleGanLossConfig {
    fn default() -> Self {
        Self { lambda_a: 10.0, lambda_b: 10.0, lambda_identity: 0.5, pool_size: 50 }
    }
}

impl CycleGanLossConfig {
    pub fn validate(&self) -> Result<()> {
        check::non_negative("lambda_a", self.lambda_a, "0 turns the A → B → A cycle loss off")?;
        check::non_negative("lambda_b", self.lambda_b, "0 turns the B → A → B cycle loss off")?;
        check::non_negative("lambda_identity", self.lambda_identity, "0 turns the identity loss off")?;
        check::at_least("pool_size", self.pool_size, 0)?;
        Ok(())
    }
}
