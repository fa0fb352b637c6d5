//! `shapes`: a synthetic labelled image set for tests and toy studies, drawn procedurally.
//!
//! Each image is black with one filled shape: class 0 a circle, 1 a square, 2 an upward
//! triangle. Its class, size (a radius of 15–35% of the side), position (fully inside) and colour
//! (each channel in 64..=255) come from a SplitMix64 stream of its own, derived from
//! `subset_seed`, the split and the image's index, so image `i` is the same whatever the count,
//! and the `test` split holds different images than `train`.

use super::Dataset;
use crate::seeds::SplitMix64;

/// Class ids of the shapes, in label order.
pub const CLASSES: [&str; 3] = ["circle", "square", "triangle"];

/// Separates the `train` and `test` streams of one seed.
const TEST_STREAM: u64 = 0x7E57_7E57_7E57_7E57;

/// `count` images of `side` × `side` pixels with `channels` (1 or 3), labelled by shape.
pub fn shapes(split: &str, count: i64, side: i64, channels: i64, seed: u64) -> Dataset {
    let stream = if split == "test" { seed ^ TEST_STREAM } else { seed };
    let plane = (side * side) as usize;
    let mut pixels = vec![0u8; count as usize * channels as usize * plane];
    let mut labels = Vec::with_capacity(count as usize);
    for (i, image) in pixels.chunks_exact_mut(channels as usize * plane).enumerate() {
        let mut rng = SplitMix64::for_item(stream, i as u64);
        let class = rng.below(3) as i64;
        draw(image, class, side as usize, channels as usize, &mut rng);
        labels.push(class);
    }
    let images = tch::Tensor::from_slice(&pixels).view([count, channels, side, side]);
    Dataset::whole("shapes", images, Some(tch::Tensor::from_slice(&labels)), CLASSES.len() as i64)
}

/// Draws one shape of `class` into a CHW `image` (already black).
fn draw(image: &mut [u8], class: i64, side: usize, channels: usize, rng: &mut SplitMix64) {
    let s = side as f64;
    let r = (s * rng.uniform(0.15, 0.35)).max(0.5);
    let cx = rng.uniform(r, (s - r).max(r));
    let cy = rng.uniform(r, (s - r).max(r));
    let colour: Vec<u8> = (0..channels).map(|_| 64 + rng.below(192) as u8).collect();
    let plane = side * side;
    for y in 0..side {
        // Pixel centres, so that shapes are symmetric about their centre.
        let py = y as f64 + 0.5 - cy;
        for x in 0..side {
            let px = x as f64 + 0.5 - cx;
            let inside = match class {
                0 => px * px + py * py <= r * r,
                1 => px.abs() <= r && py.abs() <= r,
                // Apex at (0, -r), base from (-r, r) to (r, r): the half-width grows by 1/2 per row.
                _ => (-r..=r).contains(&py) && px.abs() <= (py + r) / 2.0,
            };
            if inside {
                for (c, &value) in colour.iter().enumerate() {
                    image[c * plane + y * side + x] = value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels(ds: &Dataset) -> Vec<u8> {
        Vec::<u8>::try_from(ds.images.flatten(0, -1)).unwrap()
    }

    #[test]
    fn deterministic_for_a_seed_and_prefix_stable() {
        let a = shapes("train", 20, 16, 3, 7);
        let b = shapes("train", 20, 16, 3, 7);
        assert_eq!(a.images.size(), [20, 3, 16, 16]);
        assert_eq!(a.images.kind(), tch::Kind::Uint8);
        assert_eq!(pixels(&a), pixels(&b));
        assert!(a.labels.as_ref().unwrap().equal(b.labels.as_ref().unwrap()));
        // Image i does not depend on the count.
        let short = shapes("train", 5, 16, 3, 7);
        assert!(short.images.equal(&a.images.narrow(0, 0, 5)));
        // Another seed, or the test split, draws other images.
        assert_ne!(pixels(&a), pixels(&shapes("train", 20, 16, 3, 8)));
        assert_ne!(pixels(&a), pixels(&shapes("test", 20, 16, 3, 7)));
    }

    #[test]
    fn every_class_appears_and_every_image_has_a_shape() {
        let ds = shapes("train", 300, 32, 1, 0);
        let labels = Vec::<i64>::try_from(ds.labels.as_ref().unwrap()).unwrap();
        for class in 0..3 {
            let k = labels.iter().filter(|&&l| l == class).count();
            assert!((70..130).contains(&k), "class {class}: {k} of 300");
        }
        let lit = ds.images.ne(0).sum_dim_intlist([1i64, 2, 3].as_slice(), false, tch::Kind::Int64);
        let lit = Vec::<i64>::try_from(lit).unwrap();
        // The smallest shape (a triangle of radius 0.15 * 32) covers well over 10 pixels.
        assert!(lit.iter().all(|&k| k > 10 && k < 32 * 32), "{lit:?}");
    }

    #[test]
    fn shapes_are_drawn_where_expected() {
        // A square covers (2r)^2 pixels, a circle about pi r^2, a triangle about 2 r^2.
        let side = 64;
        let mut circle = vec![0u8; side * side];
        let mut rng = SplitMix64::new(1);
        draw(&mut circle, 0, side, 1, &mut rng);
        let mut rng = SplitMix64::new(1);
        let r = side as f64 * rng.uniform(0.15, 0.35);
        let area = circle.iter().filter(|&&v| v > 0).count() as f64;
        assert!((area / (std::f64::consts::PI * r * r) - 1.0).abs() < 0.1, "area {area}, r {r}");
    }
}
