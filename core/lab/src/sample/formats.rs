//! The formats `lab sample` writes, each one another tool reads as is:
//! - `png`: a folder of PNGs; one subfolder per class (`0`, `1`, … zero-padded so they sort
//!   numerically) when labelled: torchvision's `ImageFolder`, clean-fid, torch-fidelity, and
//!   lab's own `image-folder` dataset.
//! - `npz`: `x` as uint8 NHWC and `y` as int64, the layout clean-fid and the TF metric scripts
//!   expect (`numpy.load`).
//! - `cifar`: CIFAR-10's binary batches (`data_batch_1.bin` … `data_batch_5.bin`: per record one
//!   label byte, then 1024 red, 1024 green and 1024 blue bytes); lab's `cifar10` dataset reads it.
//! - `idx`: MNIST's IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`) for grey
//!   images; lab's `mnist` dataset and MNIST-style tools read them.
//!
//! The NPY and IDX encoders are written here: each is a fixed header and the raw bytes, a few
//! lines, where a crate would add a dependency for nothing else (the zip container is the
//! `zip` crate).
use std::io::Write;
use std::path::{Path, PathBuf};

use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Png,
    Npz,
    Cifar,
    Idx,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Npz => "npz",
            Format::Cifar => "cifar",
            Format::Idx => "idx",
        }
    }

    /// Whether the output is one file (else a folder).
    pub fn is_file(self) -> bool {
        self == Format::Npz
    }

    /// Where `samples.json` goes: inside a folder output, beside a file output
    /// (`out.npz` → `out.json`).
    pub fn provenance_path(self, out: &Path) -> PathBuf {
        if self.is_file() {
            let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let stem = name.strip_suffix(".npz").unwrap_or(&name).to_string();
            out.with_file_name(format!("{stem}.json"))
        } else {
            out.join("samples.json")
        }
    }

    /// Where `preview.png` goes: beside a file (`out.npz` → `out.preview.png`) and beside a PNG
    /// folder (`out` → `out.preview.png`: inside, image-folder loaders would take it for a
    /// sample), inside the other folders.
    pub fn preview_path(self, out: &Path) -> PathBuf {
        match self {
            Format::Npz => self.provenance_path(out).with_extension("preview.png"),
            Format::Png => {
                let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                out.with_file_name(format!("{name}.preview.png"))
            }
            Format::Cifar | Format::Idx => out.join("preview.png"),
        }
    }

    /// What is written outside `out` (its provenance and preview when they sit beside it).
    pub fn beside(self, out: &Path) -> Vec<PathBuf> {
        [self.provenance_path(out), self.preview_path(out)].into_iter().filter(|p| !p.starts_with(out)).collect()
    }

    /// Refuses shapes the format cannot hold, before anything is generated.
    pub fn check_shape(self, [c, h, w]: [i64; 3]) -> anyhow::Result<()> {
        match self {
            Format::Cifar if [c, h, w] != [3, 32, 32] => {
                anyhow::bail!(
                    "--format cifar holds 3×32×32 colour images; this model makes {c}×{h}×{w}; use png, npz or idx"
                )
            }
            Format::Idx if c != 1 => {
                anyhow::bail!("--format idx holds grey images; this model makes {c} channels; use png, npz or cifar")
            }
            Format::Png if c != 1 && c != 3 => {
                anyhow::bail!("--format png holds grey or RGB images; this model makes {c} channels; use npz")
            }
            _ => Ok(()),
        }
    }

    /// Writes `images` (uint8 NCHW, CPU) and `labels` (int64) to `out` (a new folder, or a
    /// new file for `npz`).
    pub fn write(self, out: &Path, images: &Tensor, labels: Option<&Tensor>, classes: i64) -> std::io::Result<()> {
        let labels: Option<Vec<i64>> =
            labels.map(|y| Vec::<i64>::try_from(y).map_err(std::io::Error::other)).transpose()?;
        match self {
            Format::Png => write_png(out, images, labels.as_deref(), classes),
            Format::Npz => write_npz(out, images, labels.as_deref()),
            Format::Cifar => write_cifar(out, images, labels.as_deref()),
            Format::Idx => write_idx(out, images, labels.as_deref()),
        }
    }
}

fn bytes(t: &Tensor) -> std::io::Result<Vec<u8>> {
    Vec::<u8>::try_from(t.contiguous().view([-1])).map_err(std::io::Error::other)
}

fn write_png(out: &Path, images: &Tensor, labels: Option<&[i64]>, classes: i64) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let [n, c, h, w] = <[i64; 4]>::try_from(images.size()).map_err(|_| std::io::Error::other("images are not NCHW"))?;
    let digits = (n.max(1) - 1).to_string().len().max(5);
    let class_digits = (classes.max(1) - 1).to_string().len();
    let hwc = bytes(&images.permute([0, 2, 3, 1]))?;
    let per = (h * w * c) as usize;
    for i in 0..n as usize {
        let dir = match labels {
            Some(y) => out.join(format!("{:0class_digits$}", y[i])),
            None => out.to_path_buf(),
        };
        if i == 0 || labels.is_some() {
            std::fs::create_dir_all(&dir)?;
        }
        let pixels = hwc[i * per..(i + 1) * per].to_vec();
        let path = dir.join(format!("{i:0digits$}.png"));
        let saved = if c == 1 {
            image::GrayImage::from_raw(w as u32, h as u32, pixels).map(|img| img.save(&path))
        } else {
            image::RgbImage::from_raw(w as u32, h as u32, pixels).map(|img| img.save(&path))
        };
        saved.ok_or_else(|| std::io::Error::other("image buffer size"))?.map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// One `.npy` file: the magic, version 1.0, a header dict padded to 64 bytes, the data.
fn npy(descr: &str, shape: &[i64], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn write_npz(out: &Path, images: &Tensor, labels: Option<&[i64]>) -> std::io::Result<()> {
    let file = std::fs::File::create(out)?;
    let mut zip = zip::ZipWriter::new(file);
    // Stored, not deflated (numpy's `savez` default), with a fixed timestamp: same input, same bytes.
    let options = zip::write::FileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .large_file(true);
    let nhwc = images.permute([0, 2, 3, 1]);
    let entries = (|| {
        zip.start_file("x.npy", options).map_err(std::io::Error::other)?;
        zip.write_all(&npy("|u1", &nhwc.size(), &bytes(&nhwc)?))?;
        if let Some(y) = labels {
            let data: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
            zip.start_file("y.npy", options).map_err(std::io::Error::other)?;
            zip.write_all(&npy("<i8", &[y.len() as i64], &data))?;
        }
        Ok::<(), std::io::Error>(())
    })();
    if let Err(e) = entries {
        // Dropping a writer that failed retries the write and prints its own complaint to stderr;
        // the caller removes the partial file and reports `e`, so the writer is let go unclosed.
        std::mem::forget(zip);
        return Err(e);
    }
    zip.finish().map_err(std::io::Error::other)?.sync_all()
}

fn write_cifar(out: &Path, images: &Tensor, labels: Option<&[i64]>) -> std::io::Result<()> {
    let y = labels.ok_or_else(|| {
        std::io::Error::other("--format cifar stores a label per image and this export has none (an unconditional model); use png, npz or idx")
    })?;
    let n = y.len();
    if n < 5 {
        return Err(std::io::Error::other(
            "--format cifar writes CIFAR-10's five training batches: export at least 5 images",
        ));
    }
    std::fs::create_dir_all(out)?;
    let chw = bytes(images)?;
    // As even as possible: the first `n mod 5` batches hold one more.
    let bounds: Vec<usize> = (0..=5).map(|b| b * (n / 5) + b.min(n % 5)).collect();
    for b in 0..5 {
        let range = bounds[b]..bounds[b + 1];
        let mut data = Vec::with_capacity(range.len() * 3073);
        for i in range {
            data.push(y[i] as u8);
            data.extend_from_slice(&chw[i * 3072..(i + 1) * 3072]);
        }
        std::fs::write(out.join(format!("data_batch_{}.bin", b + 1)), data)?;
    }
    let classes = y.iter().max().map_or(0, |m| m + 1);
    let names: String = (0..classes.max(10)).map(|c| format!("{c}\n")).collect();
    std::fs::write(out.join("batches.meta.txt"), names)
}

fn write_idx(out: &Path, images: &Tensor, labels: Option<&[i64]>) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let size = images.size();
    let (n, h, w) = (size[0] as u32, size[2] as u32, size[3] as u32);
    let mut data = Vec::with_capacity(16 + (n * h * w) as usize);
    for word in [crate::data::idx::IMAGES_MAGIC, n, h, w] {
        data.extend_from_slice(&word.to_be_bytes());
    }
    data.extend_from_slice(&bytes(images)?);
    std::fs::write(out.join("train-images-idx3-ubyte"), data)?;
    if let Some(y) = labels {
        let mut data = Vec::with_capacity(8 + y.len());
        for word in [crate::data::idx::LABELS_MAGIC, n] {
            data.extend_from_slice(&word.to_be_bytes());
        }
        data.extend(y.iter().map(|&v| v as u8));
        std::fs::write(out.join("train-labels-idx1-ubyte"), data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_are_padded_to_64_bytes() {
        let file = npy("|u1", &[2, 3], &[0; 6]);
        assert_eq!(&file[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([file[8], file[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&file[10..10 + header_len]).unwrap();
        assert!(
            header.starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }") && header.ends_with('\n')
        );
        assert!(std::str::from_utf8(&npy("<i8", &[4], &[0; 32])[10..]).unwrap().contains("'shape': (4,)"));
    }

    #[test]
    fn provenance_sits_inside_folders_and_beside_files() {
        assert_eq!(Format::Npz.provenance_path(Path::new("/o/fake.npz")), Path::new("/o/fake.json"));
        assert_eq!(Format::Png.provenance_path(Path::new("/o/fake")), Path::new("/o/fake/samples.json"));
    }
}
