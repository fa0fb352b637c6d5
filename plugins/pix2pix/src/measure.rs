//! How close translated images are to their targets, per image, on pixels in [0, 1] (the
//! core's [-1, 1] images mapped by (x + 1)/2), in float64:
//! - [`l1`]: the mean absolute difference over channels and pixels;
//! - [`psnr`]: 10·log10(1 / MSE) in dB, with the MSE floored at [`MSE_FLOOR`] so identical
//!   images score 100 dB rather than infinity;
//! - [`ssim`]: the structural similarity of Wang, Bovik, Sheikh & Simoncelli (2004): local
//!   means, variances and covariance under an 11×11 Gaussian window of σ = 1.5 (normalised to
//!   sum 1), K1 = 0.01, K2 = 0.03, dynamic range L = 1, computed per channel over the windows
//!   that fit inside the image (no padding), averaged over windows and channels.
//!
//! [`Totals`] accumulates them over batches into the averages `evaluate` reports.
use lab_plugin_api::tch::{Kind, Tensor};

/// The smallest MSE PSNR divides by: 1e-10, a 100 dB ceiling.
pub const MSE_FLOOR: f64 = 1e-10;
/// The SSIM window's side and the Gaussian's standard deviation (Wang et al. 2004, §III.C).
pub const SSIM_WINDOW: i64 = 11;
pub const SSIM_SIGMA: f64 = 1.5;
/// The constants stabilising SSIM's divisions: C1 = (K1·L)², C2 = (K2·L)², with L = 1.
pub const SSIM_K1: f64 = 0.01;
pub const SSIM_K2: f64 = 0.03;

/// [-1, 1] images as float64 pixels in [0, 1].
pub fn to_unit_range(x: &Tensor) -> Tensor {
    (x.to_kind(Kind::Double) + 1.0) * 0.5
}

/// Mean |x − y| per image of `[N, C, H, W]` batches.
pub fn l1(x: &Tensor, y: &Tensor) -> Tensor {
    (x - y).abs().flatten(1, -1).mean_dim([1i64].as_slice(), false, Kind::Double)
}

/// PSNR in dB per image of `[N, C, H, W]` batches of pixels in [0, 1].
pub fn psnr(x: &Tensor, y: &Tensor) -> Tensor {
    let mse = (x - y).square().flatten(1, -1).mean_dim([1i64].as_slice(), false, Kind::Double);
    mse.clamp_min(MSE_FLOOR).reciprocal().log10() * 10.0
}

/// The normalised Gaussian window, `[side, side]` in float64. Images smaller than
/// [`SSIM_WINDOW`] use the largest odd side that fits, with the same σ.
pub fn gaussian_window(side: i64, sigma: f64, device: lab_plugin_api::tch::Device) -> Tensor {
    let centre = (side - 1) as f64 / 2.0;
    let offsets = Tensor::arange(side, (Kind::Double, device)) - centre;
    let g = (-(offsets.square()) / (2.0 * sigma * sigma)).exp();
    let g = &g / g.sum(Kind::Double);
    g.unsqueeze(1).matmul(&g.unsqueeze(0))
}

/// SSIM per image of `[N, C, H, W]` batches of pixels in [0, 1].
pub fn ssim(x: &Tensor, y: &Tensor) -> Tensor {
    let (x, y) = (x.to_kind(Kind::Double), y.to_kind(Kind::Double));
    let [n, c, h, w] = x.size()[..] else { panic!("ssim takes [N, C, H, W] batches, got {:?}", x.size()) };
    let mut side = SSIM_WINDOW.min(h).min(w);
    if side % 2 == 0 {
        side -= 1;
    }
    // One window per channel (a grouped convolution), so channels are never mixed.
    let window = gaussian_window(side, SSIM_SIGMA, x.device()).view([1, 1, side, side]).repeat([c, 1, 1, 1]);
    let local = |t: &Tensor| t.conv2d(&window, None::<Tensor>, [1, 1], [0, 0], [1, 1], c);
    let (mu_x, mu_y) = (local(&x), local(&y));
    let var_x = local(&x.square()) - mu_x.square();
    let var_y = local(&y.square()) - mu_y.square();
    let cov = local(&(&x * &y)) - &mu_x * &mu_y;
    let (c1, c2) = (SSIM_K1 * SSIM_K1, SSIM_K2 * SSIM_K2);
    let numerator = (&mu_x * &mu_y * 2.0 + c1) * (cov * 2.0 + c2);
    let denominator = (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2);
    (numerator / denominator).view([n, -1]).mean_dim([1i64].as_slice(), false, Kind::Double)
}

/// Sums of the per-image measures over the images seen so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub images: i64,
    pub l1: f64,
    pub psnr: f64,
    pub ssim: f64,
    /// PSNR of the input itself against the target: what translating to the input scores.
    pub psnr_identity: f64,
}

impl Totals {
    /// Adds a batch: the inputs A, the outputs G(A) and the targets B, all in [-1, 1].
    pub fn add(&mut self, input: &Tensor, output: &Tensor, target: &Tensor) {
        let (a, fake, b) = (to_unit_range(input), to_unit_range(output), to_unit_range(target));
        let sum = |t: Tensor| t.sum(Kind::Double).double_value(&[]);
        self.images += a.size()[0];
        self.l1 += sum(l1(&fake, &b));
        self.psnr += sum(psnr(&fake, &b));
        self.ssim += sum(ssim(&fake, &b));
        self.psnr_identity += sum(psnr(&a, &b));
    }

    /// The averages per image: `(l1, psnr, ssim, psnr_identity)`.
    pub fn means(&self) -> (f64, f64, f64, f64) {
        let n = self.images.max(1) as f64;
        (self.l1 / n, self.psnr / n, self.ssim / n, self.psnr_identity / n)
    }
}
