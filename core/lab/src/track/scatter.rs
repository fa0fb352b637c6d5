//! A scatter plot of 2-D points as an image, for the toy mixtures: generated points over the
//! mixture's modes (each drawn as its 3σ circle), so mode collapse is visible at a glance.
use plotters::prelude::*;

use super::{GridImage, TrackError};

/// Renders `points` (x, y pairs) over `centres` with circles of radius `radius` (3σ), square,
/// `size` pixels a side.
pub fn scatter(points: &[[f64; 2]], centres: &[[f64; 2]], radius: f64, size: u32) -> Result<GridImage, TrackError> {
    let err = |e: String| TrackError::Invalid(format!("scatter plot: {e}"));
    // The view: every mode with a margin, and the points that are not far off.
    let extent = centres.iter().flat_map(|c| [c[0].abs(), c[1].abs()]).fold(0.0f64, f64::max) + 4.0 * radius + 0.25;
    let mut pixels = vec![255u8; (size * size * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (size, size)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .build_cartesian_2d(-extent..extent, -extent..extent)
            .map_err(|e| err(e.to_string()))?;
        let scale = (size as f64 - 16.0) / (2.0 * extent);
        let ring = ((radius * scale).round() as i32).max(2);
        chart
            .draw_series(centres.iter().map(|c| Circle::new((c[0], c[1]), ring, BLUE.mix(0.6).stroke_width(1))))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p[0].abs() <= extent && p[1].abs() <= extent)
                    .map(|p| Circle::new((p[0], p[1]), 1, RED.mix(0.5).filled())),
            )
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(GridImage { width: size, height: size, channels: 3, pixels })
}
