//! The operations users name in a pipeline, and what each one draws for every sample.
//!
//! | op | parameters (defaults) | each applied sample draws |
//! |---|---|---|
//! | `hflip` | – | a left-right mirror |
//! | `rotate90` | – | k ∈ {1, 2, 3} quarter turns (square images only) |
//! | `translate` | `ratio` 0.125, `padding` zeros | integer shifts in ±⌊ratio·size + 0.5⌋ per axis |
//! | `subpixel_translate` | `ratio` 0.125, `padding` zeros | shifts in U(−ratio, ratio)·size per axis, bilinear |
//! | `rotate` | `degrees` 15, `padding` zeros | an angle in U(−degrees, degrees) |
//! | `scale` | `min` 0.8, `max` 1.25, `padding` zeros | a factor, log-uniform in [min, max] |
//! | `aniso` | `min` 0.8, `max` 1.25, `padding` zeros | s, log-uniform: width ×s, height ×1/s |
//! | `crop` | `scale` [0.5, 1], `ratio` [3/4, 4/3], `padding` zeros | a random-resized crop (below) |
//! | `brightness` | `max` 0.5 | a shift in U(−max, max) |
//! | `saturation` | `min` 0, `max` 2 | a factor in U(min, max) about each pixel's channel mean |
//! | `contrast` | `min` 0.5, `max` 1.5 | a factor in U(min, max) about the image mean |
//! | `noise` | `std` 0.05 | Gaussian pixel noise of that standard deviation |
//! | `cutout` | `ratio` 0.5 | a ⌊ratio·size + 0.5⌋ square at a random centre, zeroed |
//!
//! Every entry also takes `p` (default 1), the probability of applying it to each sample. The
//! `padding` of the geometric operations is `zeros`, `border` or `reflection` ([`Padding`]).
//!
//! `crop` follows torchvision's `RandomResizedCrop`: the window's area is U(scale) of the image's
//! and its aspect ratio log-uniform in `ratio`; a side longer than the image's is capped at it
//! (torchvision redraws instead), then the window is placed uniformly inside the image and
//! stretched back to the full size.
//!
//! With their default parameters `brightness`, `saturation`, `contrast`, `translate` and `cutout`
//! are exactly DiffAugment's operations, sampling ranges included.
use std::f64::consts::PI;

use lab_plugin_api::tch::{Device, Kind, Tensor};

use crate::{affine, color, erase, noise, pixel, random, Padding};

/// One operation with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Hflip,
    Rotate90,
    Translate { ratio: f64, padding: Padding },
    SubpixelTranslate { ratio: f64, padding: Padding },
    Rotate { degrees: f64, padding: Padding },
    Scale { min: f64, max: f64, padding: Padding },
    Aniso { min: f64, max: f64, padding: Padding },
    Crop { scale: [f64; 2], ratio: [f64; 2], padding: Padding },
    Brightness { max: f64 },
    Saturation { min: f64, max: f64 },
    Contrast { min: f64, max: f64 },
    Noise { std: f64 },
    Cutout { ratio: f64 },
}

/// An operation and the probability of applying it to each sample (drawn per sample).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub op: Op,
    pub p: f64,
}

impl Step {
    pub fn new(op: Op, p: f64) -> Self {
        Self { op, p }
    }
}

impl Op {
    /// Every operation's name, in the order users see them listed.
    pub const NAMES: [&'static str; 13] = [
        "hflip",
        "rotate90",
        "translate",
        "subpixel_translate",
        "rotate",
        "scale",
        "aniso",
        "crop",
        "brightness",
        "saturation",
        "contrast",
        "noise",
        "cutout",
    ];

    /// The operation called `name`, with its default parameters.
    pub fn default_for(name: &str) -> Option<Op> {
        let padding = Padding::Zeros;
        Some(match name {
            "hflip" => Op::Hflip,
            "rotate90" => Op::Rotate90,
            "translate" => Op::Translate { ratio: 0.125, padding },
            "subpixel_translate" => Op::SubpixelTranslate { ratio: 0.125, padding },
            "rotate" => Op::Rotate { degrees: 15.0, padding },
            "scale" => Op::Scale { min: 0.8, max: 1.25, padding },
            "aniso" => Op::Aniso { min: 0.8, max: 1.25, padding },
            "crop" => Op::Crop { scale: [0.5, 1.0], ratio: [3.0 / 4.0, 4.0 / 3.0], padding },
            "brightness" => Op::Brightness { max: 0.5 },
            "saturation" => Op::Saturation { min: 0.0, max: 2.0 },
            "contrast" => Op::Contrast { min: 0.5, max: 1.5 },
            "noise" => Op::Noise { std: 0.05 },
            "cutout" => Op::Cutout { ratio: 0.5 },
            _ => return None,
        })
    }

    /// The name users write as `op = "..."`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Hflip => "hflip",
            Op::Rotate90 => "rotate90",
            Op::Translate { .. } => "translate",
            Op::SubpixelTranslate { .. } => "subpixel_translate",
            Op::Rotate { .. } => "rotate",
            Op::Scale { .. } => "scale",
            Op::Aniso { .. } => "aniso",
            Op::Crop { .. } => "crop",
            Op::Brightness { .. } => "brightness",
            Op::Saturation { .. } => "saturation",
            Op::Contrast { .. } => "contrast",
            Op::Noise { .. } => "noise",
            Op::Cutout { .. } => "cutout",
        }
    }

    /// For operations that resample through a warp matrix, their padding: consecutive ones with
    /// the same padding are composed and resampled once. `None` for the others.
    pub fn warp_padding(&self) -> Option<Padding> {
        match self {
            Op::SubpixelTranslate { padding, .. }
            | Op::Rotate { padding, .. }
            | Op::Scale { padding, .. }
            | Op::Aniso { padding, .. }
            | Op::Crop { padding, .. } => Some(*padding),
            _ => None,
        }
    }

    /// Whether the operation is defined only for square images.
    pub fn needs_square(&self) -> bool {
        matches!(self, Op::Rotate90)
    }

    /// Draws this warp's parameters for `n` samples of an `h`×`w` batch: `[N, 3, 3]` matrices
    /// (see [`affine`]). Panics for operations that are not warps ([`Op::warp_padding`] is `None`).
    pub fn sample_warp(&self, n: i64, h: i64, w: i64, device: Device) -> Tensor {
        match *self {
            Op::SubpixelTranslate { ratio, .. } => {
                let dx = random::uniform(n, -ratio, ratio, device) * w as f64;
                let dy = random::uniform(n, -ratio, ratio, device) * h as f64;
                affine::translation(&dx, &dy, h, w)
            }
            Op::Rotate { degrees, .. } => {
                let max = degrees * PI / 180.0;
                affine::rotation(&random::uniform(n, -max, max, device), h, w)
            }
            Op::Scale { min, max, .. } => {
                let s = random::log_uniform(n, min, max, device);
                affine::scaling(&s, &s)
            }
            Op::Aniso { min, max, .. } => {
                let s = random::log_uniform(n, min, max, device);
                affine::scaling(&s, &s.reciprocal())
            }
            Op::Crop { scale, ratio, .. } => {
                let area = random::uniform(n, scale[0], scale[1], device);
                let aspect = random::log_uniform(n, ratio[0], ratio[1], device);
                // Window sides as fractions of the image's: area·H·W pixels with width/height
                // = aspect gives width = √(area·aspect·H/W)·W and height = √(area·W/(aspect·H))·H.
                let fw = (&area * &aspect * (h as f64 / w as f64)).sqrt().clamp_max(1.0);
                let fh = (area / aspect * (w as f64 / h as f64)).sqrt().clamp_max(1.0);
                // The centre, in normalised coordinates, anywhere that keeps every point read
                // within the outermost pixel centres (±(1 − 1/size)): bilinear reads beyond them
                // would blend in padding along a window edge that touches the border.
                let cx = random::uniform(n, -1.0, 1.0, device) * (1.0 - &fw) * (1.0 - 1.0 / w as f64);
                let cy = random::uniform(n, -1.0, 1.0, device) * (1.0 - &fh) * (1.0 - 1.0 / h as f64);
                affine::crop(&fw, &fh, &cx, &cy)
            }
            _ => panic!("`{}` is not a warp", self.name()),
        }
    }

    /// Draws this operation's parameters for every sample of `x` and applies it to all of them.
    pub fn sample_apply(&self, x: &Tensor) -> lab_plugin_api::Result<Tensor> {
        let (n, _, h, w) = x.size4().map_err(|e| e.to_string())?;
        let device = x.device();
        Ok(match *self {
            Op::Hflip => pixel::hflip(x),
            Op::Rotate90 => pixel::rotate90(x, &random::integers(n, 1, 3, device))?,
            Op::Translate { ratio, padding } => {
                // Rows first, then columns: DiffAugment's draw order.
                let (max_y, max_x) = (pixel::max_shift(h, ratio), pixel::max_shift(w, ratio));
                let dy = random::integers(n, -max_y, max_y, device);
                let dx = random::integers(n, -max_x, max_x, device);
                pixel::translate(x, &dx, &dy, padding)
            }
            Op::Brightness { max } => color::brightness(x, &random::uniform(n, -max, max, device)),
            Op::Saturation { min, max } => color::saturation(x, &random::uniform(n, min, max, device)),
            Op::Contrast { min, max } => color::contrast(x, &random::uniform(n, min, max, device)),
            Op::Noise { std } => noise::gaussian(x, &Tensor::full([n], std, (Kind::Float, device))),
            Op::Cutout { ratio } => {
                let (side_y, side_x) = (erase::side(h, ratio), erase::side(w, ratio));
                let cy = erase::sample_centres(n, h, side_y, device);
                let cx = erase::sample_centres(n, w, side_x, device);
                erase::cutout(x, &cx, &cy, side_x, side_y)
            }
            _ => {
                let padding = self.warp_padding().expect("every other operation is a warp");
                affine::warp(x, &self.sample_warp(n, h, w, device), padding)
            }
        })
    }
}
