//! Sample grids: a batch of generated images tiled into one 8-bit picture.
//!
//! Generators output values in [-1, 1]; a pixel is `(x + 1) / 2 * 255` rounded half up and
//! clamped to [0, 255] (as torchvision's `save_image` does). The layout follows torchvision's
//! `make_grid`: `nrow` images per row, `padding` black pixels around and between images, and
//! unused cells of the last row left black.

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use tch::{Device, Kind, Tensor};

use super::jsonl::write_atomically;
use super::TrackError;

/// An 8-bit image, pixels in row-major HWC order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u32,
    /// `height * width * channels` bytes; pixel (x, y) starts at `(y * width + x) * channels`.
    pub pixels: Vec<u8>,
}

impl GridImage {
    /// The channel values of pixel (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> &[u8] {
        let c = self.channels as usize;
        let i = (y as usize * self.width as usize + x as usize) * c;
        &self.pixels[i..i + c]
    }

    /// Encodes the image as PNG.
    pub fn to_png(&self) -> Result<Vec<u8>, TrackError> {
        let color = match self.channels {
            1 => ExtendedColorType::L8,
            3 => ExtendedColorType::Rgb8,
            c => return Err(TrackError::Invalid(format!("cannot encode a {c}-channel image as PNG"))),
        };
        let mut png = Vec::new();
        PngEncoder::new(&mut png).write_image(&self.pixels, self.width, self.height, color)?;
        Ok(png)
    }

    /// Writes the image as a PNG file: to a temporary file next to `path` first, then renamed
    /// over it, so that readers never see a half-written picture.
    pub fn save_png(&self, path: &Path) -> Result<(), TrackError> {
        write_atomically(path, &self.to_png()?)
    }
}

/// Tiles a batch of images into one picture.
///
/// `images` is a float tensor of shape `[N, C, H, W]` with C = 1 or 3, values in [-1, 1]
/// (NaN is drawn black, ±∞ clamped), on any device. `nrow` is the number of images per row
/// (fewer if N is smaller); `padding` the border in pixels.
pub fn grid(images: &Tensor, nrow: i64, padding: i64) -> Result<GridImage, TrackError> {
    let size = images.size();
    let &[n, c, h, w] = size.as_slice() else {
        return Err(TrackError::Invalid(format!("grid: expected images of shape [N, C, H, W], got {size:?}")));
    };
    if !matches!(images.f_kind()?, Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double) {
        return Err(TrackError::Invalid(format!("grid: expected float images in [-1, 1], got {:?}", images.kind())));
    }
    if n < 1 || h < 1 || w < 1 || !(c == 1 || c == 3) {
        return Err(TrackError::Invalid(format!(
            "grid: expected at least one image with 1 or 3 channels and nonzero size, got shape {size:?}"
        )));
    }
    if nrow < 1 || padding < 0 {
        return Err(TrackError::Invalid(format!(
            "grid: nrow must be at least 1 and padding not negative (nrow {nrow}, padding {padding})"
        )));
    }
    let cols = nrow.min(n);
    let rows = (n + cols - 1) / cols;
    let too_big =
        || TrackError::Invalid(format!("grid: {rows}x{cols} images of {h}x{w} are too large for one picture"));
    let width = u32::try_from(cols * (w + padding) + padding).map_err(|_| too_big())?;
    let height = u32::try_from(rows * (h + padding) + padding).map_err(|_| too_big())?;

    // Quantize on the images' device (less to copy), then bring NHWC bytes to the host.
    let bytes = images
        .f_to_kind(Kind::Float)?
        .f_nan_to_num(-1.0, 1.0, -1.0)?
        .f_add_scalar(1.0)?
        .f_mul_scalar(127.5)?
        .f_add_scalar(0.5)?
        .f_clamp(0.0, 255.0)?
        // Truncation after the +0.5 above rounds half up; values are non-negative here.
        .f_to_kind(Kind::Uint8)?
        .f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_to_device(Device::Cpu)?
        .f_reshape([-1])?;
    let src = Vec::<u8>::try_from(&bytes)?;

    let (n, c, h, w, p) = (n as usize, c as usize, h as usize, w as usize, padding as usize);
    let cols = cols as usize;
    let stride = width as usize * c;
    let mut pixels = vec![0u8; stride * height as usize];
    let row_len = w * c;
    for i in 0..n {
        let (y0, x0) = (p + (i / cols) * (h + p), p + (i % cols) * (w + p));
        for y in 0..h {
            let from = (i * h + y) * row_len;
            let to = (y0 + y) * stride + x0 * c;
            pixels[to..to + row_len].copy_from_slice(&src[from..from + row_len]);
        }
    }
    Ok(GridImage { width, height, channels: c as u32, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float images whose pixel (image i, channel ch, y, x) maps to byte `(i*37 + ch*11 + y*5 + x*3) % 256`.
    pub(crate) fn known_images(n: i64, c: i64, h: i64, w: i64) -> (Tensor, impl Fn(i64, i64, i64, i64) -> u8) {
        let byte = |i: i64, ch: i64, y: i64, x: i64| ((i * 37 + ch * 11 + y * 5 + x * 3) % 256) as u8;
        let mut v = Vec::new();
        for i in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        v.push(byte(i, ch, y, x) as f32 / 127.5 - 1.0);
                    }
                }
            }
        }
        (Tensor::from_slice(&v).reshape([n, c, h, w]), byte)
    }

    #[test]
    fn known_pixels_land_at_the_right_offsets() {
        // 5 images of 5x7 RGB, 3 per row: a 2x3 grid with one empty cell.
        let (n, c, h, w, p) = (5, 3, 5, 7, 2);
        let (t, byte) = known_images(n, c, h, w);
        let g = grid(&t, 3, p).unwrap();
        assert_eq!((g.width, g.height, g.channels), (3 * (7 + 2) + 2, 2 * (5 + 2) + 2, 3));
        assert_eq!(g.pixels.len(), (g.width * g.height * 3) as usize);
        let mut checked = 0;
        for i in 0..n {
            let (y0, x0) = (p + (i / 3) * (h + p), p + (i % 3) * (w + p));
            for y in 0..h {
                for x in 0..w {
                    let px = g.pixel((x0 + x) as u32, (y0 + y) as u32);
                    for ch in 0..c {
                        assert_eq!(px[ch as usize], byte(i, ch, y, x), "image {i} ({x},{y}) channel {ch}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 5 * 3 * 5 * 7);
        // Padding and the empty sixth cell are black.
        assert_eq!(g.pixel(0, 0), [0, 0, 0]);
        assert_eq!(g.pixel(p as u32 + 7, p as u32), [0, 0, 0]);
        assert_eq!(g.pixel(g.width - 3, g.height - 3), [0, 0, 0]);
        let nonzero_outside_images = g.pixels.iter().filter(|&&b| b != 0).count();
        assert!(nonzero_outside_images <= (5 * 3 * 5 * 7) as usize);
    }

    #[test]
    fn quantization_rounds_and_clamps() {
        let v = [-1.0f32, 1.0, 0.0, -2.0, 3.0, f32::NAN, f32::INFINITY, 1.0 / 255.0 - 1.0, 2.0 / 255.0 - 1.0];
        let t = Tensor::from_slice(&v).reshape([1, 1, 1, v.len() as i64]);
        let g = grid(&t, 1, 0).unwrap();
        // 0.0 -> 127.5 rounds half up to 128; 1/255-1 -> 0.5 -> 1; 2/255-1 -> 1.
        assert_eq!(g.pixels, [0, 255, 128, 0, 255, 0, 255, 1, 1]);
    }

    #[test]
    fn grey_non_square_and_single_row() {
        let (t, byte) = known_images(2, 1, 3, 4);
        let g = grid(&t, 8, 1).unwrap();
        assert_eq!((g.width, g.height, g.channels), (2 * 5 + 1, 3 + 2, 1));
        assert_eq!(g.pixel(1 + 5 + 3, 1 + 2)[0], byte(1, 0, 2, 3));
        let half = t.to_kind(Kind::Half);
        assert_eq!(grid(&half, 8, 1).unwrap(), g);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(grid(&Tensor::zeros([2, 2, 4, 4], (Kind::Float, Device::Cpu)), 2, 0).is_err());
        assert!(grid(&Tensor::zeros([2, 3, 4], (Kind::Float, Device::Cpu)), 2, 0).is_err());
        assert!(grid(&Tensor::zeros([2, 3, 4, 4], (Kind::Uint8, Device::Cpu)), 2, 0).is_err());
        assert!(grid(&Tensor::zeros([2, 3, 4, 4], (Kind::Float, Device::Cpu)), 0, 0).is_err());
        assert!(grid(&Tensor::zeros([0, 3, 4, 4], (Kind::Float, Device::Cpu)), 1, 0).is_err());
    }

    #[test]
    fn png_decodes_to_the_same_pixels_and_saves_atomically() {
        let (t, _) = known_images(6, 3, 5, 7);
        let g = grid(&t, 3, 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step_000000.png");
        g.save_png(&path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!((back.width(), back.height()), (g.width, g.height));
        assert_eq!(back.into_raw(), g.pixels);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn grid_on_cuda_matches_cpu() {
        if !tch::Cuda::is_available() {
            eprintln!("no CUDA device; skipped");
            return;
        }
        let (t, _) = known_images(6, 3, 5, 7);
        assert_eq!(grid(&t.to_device(Device::Cuda(0)), 3, 2).unwrap(), grid(&t, 3, 2).unwrap());
        eprintln!("CUDA grid matches CPU");
    }
}
