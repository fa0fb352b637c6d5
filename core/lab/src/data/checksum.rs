//! Checksums of downloaded archives: SHA-256 (`sha2`) and MD5 (`md-5`, what most dataset authors
//! publish). MD5 guards against corrupt downloads, not against tampering (SHA-256 does that
//! where known).

use md5::Md5;
use sha2::{Digest, Sha256};

/// A published checksum of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    /// Lower-case hex MD5.
    Md5(String),
    /// Lower-case hex SHA-256.
    Sha256(String),
}

impl Expected {
    /// The algorithm's name, as printed in error messages.
    pub(crate) fn algorithm(&self) -> &'static str {
        match self {
            Expected::Md5(_) => "MD5",
            Expected::Sha256(_) => "SHA-256",
        }
    }

    /// The expected digest in lower-case hex.
    pub(crate) fn hex(&self) -> &str {
        match self {
            Expected::Md5(h) | Expected::Sha256(h) => h,
        }
    }
}

/// Computes MD5 and SHA-256 of a stream at once, so a download is read only once.
pub(crate) struct Hasher {
    md5: Md5,
    sha256: Sha256,
}

/// The finished digests of a [`Hasher`], in lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Digests {
    pub md5: String,
    pub sha256: String,
}

impl Digests {
    /// The first expected checksum that does not match, with the digest actually found.
    pub(crate) fn mismatch<'a>(&self, expected: &'a [Expected]) -> Option<(&'a Expected, String)> {
        expected.iter().find_map(|e| {
            let actual = match e {
                Expected::Md5(_) => &self.md5,
                Expected::Sha256(_) => &self.sha256,
            };
            (!actual.eq_ignore_ascii_case(e.hex())).then(|| (e, actual.clone()))
        })
    }
}

impl Hasher {
    pub(crate) fn new() -> Self {
        Self { md5: Md5::new(), sha256: Sha256::new() }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.sha256.update(bytes);
    }

    pub(crate) fn finish(self) -> Digests {
        Digests { md5: hex(&self.md5.finalize()), sha256: hex(&self.sha256.finalize()) }
    }
}

/// Digests of a whole file, read in chunks.
pub(crate) fn digest_file(path: &std::path::Path) -> std::io::Result<Digests> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_hex(data: &[u8]) -> String {
        let mut m = Md5::new();
        m.update(data);
        hex(&m.finalize())
    }

    #[test]
    fn md5_matches_the_rfc_1321_test_suite() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(md5_hex(input.as_bytes()), expected, "MD5({input:?})");
        }
    }

    #[test]
    fn md5_is_independent_of_how_the_stream_is_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let whole = md5_hex(&data);
        for split in [1, 55, 56, 63, 64, 65, 128, 999] {
            let mut m = Md5::new();
            for chunk in data.chunks(split) {
                m.update(chunk);
            }
            assert_eq!(hex(&m.finalize()), whole, "chunks of {split}");
        }
    }

    #[test]
    fn hasher_reports_the_first_mismatch() {
        let mut h = Hasher::new();
        h.update(b"abc");
        let d = h.finish();
        assert_eq!(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let good = [Expected::Md5("900150983cd24fb0d6963f7d28e17f72".into()), Expected::Sha256(d.sha256.clone())];
        assert!(d.mismatch(&good).is_none());
        let bad = [Expected::Md5("900150983cd24fb0d6963f7d28e17f72".into()), Expected::Sha256("00".into())];
        let (which, actual) = d.mismatch(&bad).unwrap();
        assert_eq!(which.algorithm(), "SHA-256");
        assert_eq!(actual, d.sha256);
    }

    /// Cross-checks against the system's `md5sum` on a real file, when both exist.
    #[test]
    fn md5_agrees_with_md5sum_on_a_real_file() {
        let path = std::path::Path::new("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
        let Ok(out) = std::process::Command::new("md5sum").arg(path).output() else {
            println!("skipped: no md5sum on this machine");
            return;
        };
        if !path.exists() || !out.status.success() {
            println!("skipped: {} is absent (Debian package dataset-fashion-mnist)", path.display());
            return;
        }
        let expected = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
        assert_eq!(digest_file(path).unwrap().md5, expected);
    }
}
