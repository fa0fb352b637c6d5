//! `lab data fetch <name>`: downloads a dataset's canonical files into the data root and checks
//! them against their published checksums.
//!
//! | dataset         | source                                                   | checked with        | lands in                        |
//! |-----------------|----------------------------------------------------------|---------------------|---------------------------------|
//! | `fashion-mnist` | the four `.gz` files linked from zalandoresearch/fashion-mnist | published MD5s | `<root>/fashion-mnist/`        |
//! | `mnist`         | the four `.gz` files (PyTorch's S3 mirror, then LeCun's site) | published MD5s   | `<root>/mnist/`                 |
//! | `cifar10`       | `cifar-10-binary.tar.gz` from cs.toronto.edu              | SHA-256 and MD5     | `<root>/cifar-10-batches-bin/`  |
//!
//! Each file is streamed to `<name>.part` with a progress bar on stderr, verified, then renamed,
//! so an interrupted download never looks complete. The CIFAR-10 archive is unpacked next to
//! itself and then deleted; an archive already in the root (put there by hand) is verified and
//! unpacked without the network. HTTP(S) proxies are taken from the usual environment variables,
//! and setting `LAB_OFFLINE=1` skips the network altogether (the error says how to get the files
//! by hand).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checksum::{Expected, Hasher};
use super::{cifar, did_you_mean, DataError};

/// The datasets [`fetch()`] can download.
pub const FETCHABLE: &[&str] = &["fashion-mnist", "mnist", "cifar10"];

const FASHION_MNIST_MIRRORS: &[&str] = &[
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
];
const FASHION_MNIST_MD5: &[(&str, &str)] = &[
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
];
const MNIST_MIRRORS: &[&str] = &["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"];
const MNIST_MD5: &[(&str, &str)] = &[
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
];
const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const CIFAR10_ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// Published on the CIFAR page.
const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// As recorded by TensorFlow Datasets' checksum list for the same URL.
const CIFAR10_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";

/// One file to download, from the first of its mirrors that works.
#[derive(Clone, Debug)]
pub(crate) struct RemoteFile {
    pub name: String,
    pub urls: Vec<String>,
    pub checks: Vec<Expected>,
}

/// Where a dataset comes from and what it looks like once fetched.
#[derive(Clone, Debug)]
pub(crate) struct Remote {
    pub dataset: String,
    /// The folder under the root that holds the dataset once fetched.
    pub folder: String,
    /// Files that must be in `folder` for it to count as complete (a `.gz` name also accepts
    /// the unzipped file).
    pub complete: Vec<String>,
    pub downloads: Vec<RemoteFile>,
    /// `Some(top)`: the single download is a `.tar.gz` whose folder `top` becomes `folder`.
    pub unpack: Option<String>,
}

fn idx_remote(dataset: &str, mirrors: &[&str], md5s: &[(&str, &str)]) -> Remote {
    Remote {
        dataset: dataset.into(),
        folder: dataset.into(),
        complete: md5s.iter().map(|(name, _)| name.to_string()).collect(),
        downloads: md5s
            .iter()
            .map(|(name, md5)| RemoteFile {
                name: name.to_string(),
                urls: mirrors.iter().map(|m| format!("{m}{name}")).collect(),
                checks: vec![Expected::Md5(md5.to_string())],
            })
            .collect(),
        unpack: None,
    }
}

/// The canonical source of a dataset, or why it has none.
pub(crate) fn remote(name: &str) -> Result<Remote, DataError> {
    match name {
        "fashion-mnist" => Ok(idx_remote(name, FASHION_MNIST_MIRRORS, FASHION_MNIST_MD5)),
        "mnist" => Ok(idx_remote(name, MNIST_MIRRORS, MNIST_MD5)),
        "cifar10" => Ok(Remote {
            dataset: name.into(),
            folder: cifar::BIN_DIR.into(),
            complete: ["train", "test"]
                .iter()
                .flat_map(|s| cifar::split_batches(s))
                .map(|b| format!("{b}.bin"))
                .collect(),
            downloads: vec![RemoteFile {
                name: CIFAR10_ARCHIVE.into(),
                urls: vec![CIFAR10_URL.into()],
                checks: vec![Expected::Sha256(CIFAR10_SHA256.into()), Expected::Md5(CIFAR10_MD5.into())],
            }],
            unpack: Some(cifar::BIN_DIR.into()),
        }),
        "shapes" => Err(DataError::NotFetchable {
            dataset: name.into(),
            reason: "shapes are drawn procedurally when a run starts; nothing is stored on disk".into(),
        }),
        "image-folder" => Err(DataError::NotFetchable {
            dataset: name.into(),
            reason: "an image folder is your own images; point data.path at it".into(),
        }),
        other => Err(DataError::NotFetchable {
            dataset: other.into(),
            reason: format!(
                "not a dataset lab can download: expected one of {}{}",
                FETCHABLE.join(", "),
                did_you_mean(other, FETCHABLE).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
            ),
        }),
    }
}

/// How to get `dataset` into `root` without `lab`'s help, for error messages.
pub(crate) fn manual_instructions(dataset: &str, root: &Path) -> String {
    let files = |md5s: &[(&str, &str)]| {
        let names: Vec<&str> = md5s.iter().map(|(n, _)| *n).collect();
        format!("{} and {}", names[..names.len() - 1].join(", "), names[names.len() - 1])
    };
    match dataset {
        "fashion-mnist" => format!(
            "download {} from {} and put them (gzipped or not) in {}, or install Debian's dataset-fashion-mnist \
             package, or run `lab data fetch fashion-mnist` when online",
            files(FASHION_MNIST_MD5),
            FASHION_MNIST_MIRRORS[0],
            root.join("fashion-mnist").display()
        ),
        "mnist" => format!(
            "download {} from {} and put them (gzipped or not) in {}, or run `lab data fetch mnist` when online",
            files(MNIST_MD5),
            MNIST_MIRRORS[0],
            root.join("mnist").display()
        ),
        "cifar10" => format!(
            "download {CIFAR10_URL} and unpack it in {} so that {} holds data_batch_1.bin … data_batch_5.bin and \
             test_batch.bin (or put the archive itself in {} and run `lab data fetch cifar10`), or run \
             `lab data fetch cifar10` when online",
            root.display(),
            root.join(cifar::BIN_DIR).display(),
            root.display()
        ),
        other => format!("`{other}` has no canonical download"),
    }
}

/// The name `lab data fetch` knows the standard feature network by.
pub const FEATURE_NETWORK: &str = "inception";

/// How to get the feature network to `dest` by hand, for error messages.
fn feature_network_instructions(dest: &Path) -> String {
    let dir = dest.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into());
    format!(
        "mkdir -p {dir} && curl -L -o {} {}, or run `lab data fetch inception` when online",
        dest.display(),
        lab_plugin_api::paths::INCEPTION_URL
    )
}

/// The standard feature network as a download: one file, its published SHA-256.
fn feature_network_remote() -> RemoteFile {
    RemoteFile {
        name: lab_plugin_api::paths::INCEPTION_FILE.into(),
        urls: vec![lab_plugin_api::paths::INCEPTION_URL.into()],
        checks: vec![Expected::Sha256(lab_plugin_api::paths::INCEPTION_SHA256.into())],
    }
}

/// Downloads the standard feature network (TF-Inception, TorchScript) to `dest` unless a file
/// with its published SHA-256 is already there: to `dest.part` first, verified, then renamed,
/// with a progress bar. A file at `dest` with another hash is left alone (it may be the user's
/// own network) and reported. `LAB_OFFLINE=1` fails at once with the instructions.
pub fn fetch_feature_network(dest: &Path) -> Result<PathBuf, DataError> {
    fetch_one_file(
        FEATURE_NETWORK,
        &feature_network_remote(),
        dest,
        &agent(),
        offline(),
        &feature_network_instructions(dest),
    )
}

/// [`fetch_feature_network`]'s work for any single verified file, with its source, agent and
/// network switch given (tests point it at a local server).
pub(crate) fn fetch_one_file(
    label: &str,
    file: &RemoteFile,
    dest: &Path,
    agent: &ureq::Agent,
    offline: bool,
    fix: &str,
) -> Result<PathBuf, DataError> {
    if dest.is_file() {
        let digests = super::checksum::digest_file(dest).map_err(DataError::io(dest, "read"))?;
        return match digests.mismatch(&file.checks) {
            None => Ok(dest.to_path_buf()),
            Some((expected, actual)) => Err(DataError::Format {
                path: dest.to_path_buf(),
                message: format!(
                    "already exists but is not the published {}: {} {actual}, expected {}; it was left as it is. \
                     Delete it to download the standard file, or name your own network with the `features` key",
                    file.name,
                    expected.algorithm(),
                    expected.hex()
                ),
            }),
        };
    }
    download(agent, label, file, dest, offline, fix)?;
    Ok(dest.to_path_buf())
}

/// `LAB_OFFLINE=1`: never touch the network.
pub(crate) fn offline() -> bool {
    std::env::var_os("LAB_OFFLINE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The HTTP agent every download uses: bounded waits, the environment's proxy.
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .try_proxy_from_env(true)
        .user_agent(concat!("lab/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Downloads dataset `name` into `root` unless it is already there, and returns its folder.
///
/// Fetchable: `fashion-mnist`, `mnist`, `cifar10`. Nothing is downloaded for files already
/// present. Set `LAB_OFFLINE=1` to fail at once, with instructions, instead of trying the network.
pub fn fetch(name: &str, root: &Path) -> Result<PathBuf, DataError> {
    let remote = remote(name)?;
    fetch_remote(&remote, root, &agent(), offline())
}

fn is_complete(remote: &Remote, dir: &Path) -> bool {
    remote
        .complete
        .iter()
        .all(|name| dir.join(name).is_file() || name.strip_suffix(".gz").is_some_and(|plain| dir.join(plain).is_file()))
}

/// [`fetch()`] with its source, agent and network switch given, so tests can point it at a local
/// server or none.
pub(crate) fn fetch_remote(
    remote: &Remote,
    root: &Path,
    agent: &ureq::Agent,
    offline: bool,
) -> Result<PathBuf, DataError> {
    let dest = root.join(&remote.folder);
    if is_complete(remote, &dest) {
        tracing::info!(dataset = %remote.dataset, folder = %dest.display(), "already downloaded");
        return Ok(dest);
    }
    let fix = manual_instructions(&remote.dataset, root);
    match &remote.unpack {
        None => {
            for file in &remote.downloads {
                let path = dest.join(&file.name);
                let plain = file.name.strip_suffix(".gz").map(|p| dest.join(p));
                if path.is_file() || plain.is_some_and(|p| p.is_file()) {
                    continue;
                }
                download(agent, &remote.dataset, file, &path, offline, &fix)?;
            }
        }
        Some(top) => {
            let file = &remote.downloads[0];
            let archive = root.join(&file.name);
            if archive.is_file() {
                verify_existing(&remote.dataset, file, &archive)?;
            } else {
                download(agent, &remote.dataset, file, &archive, offline, &fix)?;
            }
            unpack(&remote.dataset, &archive, root, top, &dest)?;
        }
    }
    if !is_complete(remote, &dest) {
        return Err(DataError::Missing {
            dataset: remote.dataset.clone(),
            expected: format!("{} in {} after the download", remote.complete.join(", "), dest.display()),
            fix: format!("the archive did not hold them; {fix}"),
        });
    }
    Ok(dest)
}

/// An archive found in the root: verified before use; a bad one is deleted so the next fetch
/// downloads it again.
fn verify_existing(dataset: &str, file: &RemoteFile, path: &Path) -> Result<(), DataError> {
    tracing::info!(archive = %path.display(), "verifying the archive already in the data root");
    let digests = super::checksum::digest_file(path).map_err(DataError::io(path, "read"))?;
    if let Some((expected, actual)) = digests.mismatch(&file.checks) {
        let _ = std::fs::remove_file(path);
        return Err(DataError::Checksum {
            dataset: dataset.into(),
            path: path.to_path_buf(),
            algorithm: expected.algorithm(),
            expected: expected.hex().into(),
            actual,
        });
    }
    Ok(())
}

/// Why one mirror failed.
enum Failure {
    /// The network or server: try the next mirror, then tell the user how to get the file by hand.
    Network(String),
    /// The file arrived but is not the published one.
    Checksum(DataError),
}

/// Downloads `file` to `dest` from the first mirror that works.
fn download(
    agent: &ureq::Agent,
    dataset: &str,
    file: &RemoteFile,
    dest: &Path,
    offline: bool,
    fix: &str,
) -> Result<(), DataError> {
    let failed = |reason: String| DataError::Download {
        dataset: dataset.into(),
        url: file.urls.join(" or "),
        reason,
        fix: fix.into(),
    };
    if offline {
        return Err(failed("LAB_OFFLINE is set".into()));
    }
    let mut part = dest.as_os_str().to_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut last = None;
    for url in &file.urls {
        tracing::info!(%url, to = %dest.display(), "downloading");
        match download_one(agent, dataset, url, file, &part) {
            Ok(()) => {
                return std::fs::rename(&part, dest).map_err(DataError::io(dest, "move the download into place"));
            }
            Err(Ok(f)) => {
                let _ = std::fs::remove_file(&part);
                // Only the last failure reaches the user, as one message with instructions.
                tracing::debug!(%url, "download failed; trying the next mirror if any");
                last = Some(f);
            }
            Err(Err(io)) => {
                let _ = std::fs::remove_file(&part);
                return Err(io);
            }
        }
    }
    Err(match last {
        Some(Failure::Checksum(e)) => e,
        Some(Failure::Network(reason)) => failed(reason),
        None => failed("no mirror is known".into()),
    })
}

/// One attempt: `Err(Ok(_))` for a failure worth trying another mirror for, `Err(Err(_))` for
/// a local I/O error.
fn download_one(
    agent: &ureq::Agent,
    dataset: &str,
    url: &str,
    file: &RemoteFile,
    part: &Path,
) -> Result<(), Result<Failure, DataError>> {
    let response = agent.get(url).call().map_err(|e| Ok(Failure::Network(describe(&e))))?;
    let total: Option<u64> = response.header("Content-Length").and_then(|v| v.parse().ok());
    let bar = progress_bar(&file.name, total);
    let mut reader = response.into_reader();
    // Folders are created only once there is something to put in them.
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Err(DataError::io(dir, "create the folder")(e)))?;
    }
    let out = std::fs::File::create(part).map_err(|e| Err(DataError::io(part, "create")(e)))?;
    let mut out = std::io::BufWriter::new(out);
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(Ok(Failure::Network(format!("the connection failed after {received} bytes ({e})"))));
            }
        };
        out.write_all(&buf[..n]).map_err(|e| Err(DataError::io(part, "write")(e)))?;
        hasher.update(&buf[..n]);
        received += n as u64;
        bar.inc(n as u64);
    }
    out.flush().map_err(|e| Err(DataError::io(part, "write")(e)))?;
    bar.finish_and_clear();
    if let Some(total) = total.filter(|&t| t != received) {
        return Err(Ok(Failure::Network(format!("the server promised {total} bytes but sent {received}"))));
    }
    let digests = hasher.finish();
    if let Some((expected, actual)) = digests.mismatch(&file.checks) {
        return Err(Ok(Failure::Checksum(DataError::Checksum {
            dataset: dataset.into(),
            path: part.to_path_buf(),
            algorithm: expected.algorithm(),
            expected: expected.hex().into(),
            actual,
        })));
    }
    tracing::info!(file = %file.name, bytes = received, md5 = %digests.md5, sha256 = %digests.sha256, "download verified");
    Ok(())
}

/// A ureq error without its URL (the message names the URLs already).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, response) => format!("the server answered HTTP {code} {}", response.status_text()),
        ureq::Error::Transport(t) => {
            let mut s = t.kind().to_string();
            if let Some(m) = t.message() {
                s.push_str(&format!(": {m}"));
            }
            if let Some(source) = std::error::Error::source(t) {
                s.push_str(&format!(": {source}"));
            }
            if matches!(t.kind(), ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed) {
                s.push_str(" (is this machine offline?)");
            }
            s
        }
    }
}

fn progress_bar(name: &str, total: Option<u64>) -> indicatif::ProgressBar {
    let bar = match total {
        Some(t) => indicatif::ProgressBar::new(t),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = match total {
        Some(_) => "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        None => "{msg} {spinner} {bytes} ({bytes_per_sec})",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("downloading {name}"));
    bar
}

/// Unpacks `archive` (a `.tar.gz` holding the folder `top`) into `dest`, then deletes it.
fn unpack(dataset: &str, archive: &Path, root: &Path, top: &str, dest: &Path) -> Result<(), DataError> {
    tracing::info!(archive = %archive.display(), to = %dest.display(), "unpacking");
    let staging = root.join(format!(".{top}.unpacking"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(DataError::io(&staging, "remove the old staging folder"))?;
    }
    std::fs::create_dir_all(&staging).map_err(DataError::io(&staging, "create the folder"))?;
    let file = std::fs::File::open(archive).map_err(DataError::io(archive, "open"))?;
    // `unpack` refuses entries that would land outside `staging`.
    tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file))).unpack(&staging).map_err(|e| {
        DataError::format(
            archive,
            format!("cannot be unpacked ({e}); delete it and run `lab data fetch {dataset}` again"),
        )
    })?;
    let extracted = staging.join(top);
    if !extracted.is_dir() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(DataError::format(
            archive,
            format!(
                "holds no {top}/ folder; it is not the canonical archive: delete it and run `lab data fetch {dataset}`"
            ),
        ));
    }
    std::fs::create_dir_all(dest).map_err(DataError::io(dest, "create the folder"))?;
    for entry in std::fs::read_dir(&extracted).map_err(DataError::io(&extracted, "list the folder"))? {
        let entry = entry.map_err(DataError::io(&extracted, "list the folder"))?;
        let to = dest.join(entry.file_name());
        std::fs::rename(entry.path(), &to).map_err(DataError::io(&to, "move the unpacked file into place"))?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::remove_file(archive).map_err(DataError::io(archive, "delete the unpacked archive"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sha2::Digest;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    use super::super::checksum::digest_file;
    use super::super::idx::tests::{gzip, idx_images, idx_labels};
    use super::*;

    /// A one-thread HTTP server on 127.0.0.1 serving `files` (path → body) for `requests`
    /// requests; 404 for other paths. Returns its base URL.
    fn serve(files: Vec<(String, Vec<u8>)>, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                match files.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => {
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        stream.write_all(head.as_bytes()).unwrap();
                        stream.write_all(body).unwrap();
                    }
                    None => {
                        stream
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .unwrap();
                    }
                }
            }
        });
        base
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout_read(Duration::from_secs(5)).build()
    }

    fn md5_of(bytes: &[u8]) -> Expected {
        let mut h = Hasher::new();
        h.update(bytes);
        Expected::Md5(h.finish().md5)
    }

    /// The Fashion-MNIST source with its files and URLs replaced by test ones.
    fn test_idx_remote(base: &str, bodies: &[(String, Vec<u8>)]) -> Remote {
        let mut remote = remote("fashion-mnist").unwrap();
        for (file, (name, body)) in remote.downloads.iter_mut().zip(bodies) {
            assert_eq!(&file.name, name);
            file.urls = vec![format!("{base}missing/{name}"), format!("{base}{name}")];
            file.checks = vec![md5_of(body)];
        }
        remote
    }

    fn idx_bodies() -> Vec<(String, Vec<u8>)> {
        vec![
            ("train-images-idx3-ubyte.gz".into(), gzip(&idx_images(4, 28, 28))),
            ("train-labels-idx1-ubyte.gz".into(), gzip(&idx_labels(&[0, 1, 2, 3]))),
            ("t10k-images-idx3-ubyte.gz".into(), gzip(&idx_images(2, 28, 28))),
            ("t10k-labels-idx1-ubyte.gz".into(), gzip(&idx_labels(&[9, 8]))),
        ]
    }

    #[test]
    fn the_canonical_sources_are_complete() {
        for name in FETCHABLE {
            let r = remote(name).unwrap();
            assert!(!r.downloads.is_empty());
            assert!(r.downloads.iter().all(|f| !f.urls.is_empty() && !f.checks.is_empty()));
        }
        let cifar = remote("cifar10").unwrap();
        assert_eq!(cifar.complete.len(), 6);
        assert_eq!(cifar.downloads[0].urls, vec!["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]);
        assert_eq!(
            fetch("shapes", Path::new("/nonexistent")).unwrap_err().to_string(),
            "shapes: nothing to fetch: shapes are drawn procedurally when a run starts; nothing is stored on disk"
        );
        assert_eq!(
            fetch("cifar", Path::new("/nonexistent")).unwrap_err().to_string(),
            "cifar: nothing to fetch: not a dataset lab can download: expected one of fashion-mnist, mnist, cifar10 \
             (did you mean \"cifar10\"?)"
        );
    }

    #[test]
    fn offline_error_says_which_files_go_where_and_how_to_fetch_later() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let err = fetch_remote(&remote("cifar10").unwrap(), root, &agent(), true).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cifar10: cannot download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz: LAB_OFFLINE is set. \
                 To get it by hand: download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and unpack it in \
                 {root} so that {root}/cifar-10-batches-bin holds data_batch_1.bin … data_batch_5.bin and test_batch.bin \
                 (or put the archive itself in {root} and run `lab data fetch cifar10`), or run `lab data fetch cifar10` \
                 when online",
                root = root.display()
            )
        );
        let err = fetch_remote(&remote("fashion-mnist").unwrap(), root, &agent(), true).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "fashion-mnist: cannot download \
                 http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz or \
                 https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-images-idx3-ubyte.gz: \
                 LAB_OFFLINE is set. To get it by hand: download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                 t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from \
                 http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ and put them (gzipped or not) in \
                 {}, or install Debian's dataset-fashion-mnist package, or run `lab data fetch fashion-mnist` when online",
                root.join("fashion-mnist").display()
            )
        );
    }

    #[test]
    fn unreachable_server_is_one_clear_error() {
        // Port 1 on the loopback: nothing listens, the connection is refused at once.
        let tmp = tempfile::tempdir().unwrap();
        let mut r = remote("cifar10").unwrap();
        r.downloads[0].urls = vec!["http://127.0.0.1:1/cifar-10-binary.tar.gz".into()];
        let err = fetch_remote(&r, tmp.path(), &agent(), false).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Download { .. }), "{msg}");
        assert!(msg.starts_with("cifar10: cannot download http://127.0.0.1:1/cifar-10-binary.tar.gz: "), "{msg}");
        assert!(
            msg.contains("To get it by hand: download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
            "{msg}"
        );
        assert!(msg.ends_with("or run `lab data fetch cifar10` when online"), "{msg}");
        // No half-written files are left behind.
        assert!(!tmp.path().join("cifar-10-binary.tar.gz.part").exists());
        assert!(!tmp.path().join("cifar-10-binary.tar.gz").exists());
    }

    #[test]
    fn idx_files_download_verify_and_load_from_a_local_server() {
        let bodies = idx_bodies();
        // Each file: a 404 from the first mirror, then the real one.
        let base = serve(bodies.clone(), 8);
        let remote = test_idx_remote(&base, &bodies);
        let tmp = tempfile::tempdir().unwrap();
        let dir = fetch_remote(&remote, tmp.path(), &agent(), false).unwrap();
        assert_eq!(dir, tmp.path().join("fashion-mnist"));
        for (name, body) in &bodies {
            assert_eq!(&std::fs::read(dir.join(name)).unwrap(), body);
            assert!(!dir.join(format!("{name}.part")).exists());
        }
        let ds = super::super::idx::load_dir("fashion-mnist", &dir, "test").unwrap();
        assert_eq!(ds.images.size(), [2, 1, 28, 28]);
        // Complete now: a second fetch touches no network (the server has stopped answering).
        assert_eq!(fetch_remote(&remote, tmp.path(), &agent(), true).unwrap(), dir);
    }

    /// The feature network as a download from `base`, with the SHA-256 of `body`.
    fn network_from(base: &str, body: &[u8]) -> RemoteFile {
        RemoteFile {
            name: "inception-2015-12-05.pt".into(),
            urls: vec![format!("{base}inception-2015-12-05.pt")],
            checks: vec![Expected::Sha256(format!("{:x}", sha2::Sha256::digest(body)))],
        }
    }

    #[test]
    fn the_feature_network_downloads_verified_through_a_part_file_and_is_reused() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let base = serve(vec![("inception-2015-12-05.pt".into(), body.clone())], 1);
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("cache/lab/inception-2015-12-05.pt");
        let file = network_from(&base, &body);
        let got = fetch_one_file("inception", &file, &dest, &agent(), false, "by hand").unwrap();
        assert_eq!(got, dest);
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert!(!tmp.path().join("cache/lab/inception-2015-12-05.pt.part").exists());
        // Present and verified: no request is made (the server answers only once).
        assert_eq!(fetch_one_file("inception", &file, &dest, &agent(), false, "by hand").unwrap(), dest);
        // The published hash is the one the command pins.
        assert_eq!(feature_network_remote().checks, [Expected::Sha256(lab_plugin_api::paths::INCEPTION_SHA256.into())]);
    }

    #[test]
    fn a_corrupt_feature_network_download_is_refused_and_a_users_own_file_is_left_alone() {
        let body = b"not the network".to_vec();
        let base = serve(vec![("inception-2015-12-05.pt".into(), body.clone())], 1);
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("inception-2015-12-05.pt");
        let mut file = network_from(&base, b"the real network");
        let err = fetch_one_file("inception", &file, &dest, &agent(), false, "by hand").unwrap_err().to_string();
        assert!(err.contains("SHA-256 checksum mismatch"), "{err}");
        assert!(err.ends_with("run `lab data fetch inception` again"), "{err}");
        assert!(!dest.exists() && !tmp.path().join("inception-2015-12-05.pt.part").exists());
        // A different file already there (a user's own network) is reported, not replaced.
        std::fs::write(&dest, b"my own network").unwrap();
        file.urls = vec!["http://127.0.0.1:1/never-asked".into()];
        let err = fetch_one_file("inception", &file, &dest, &agent(), false, "by hand").unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: already exists but is not the published", dest.display())), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"my own network");
    }

    #[test]
    fn offline_the_feature_network_fetch_says_how_to_get_it_by_hand() {
        let dest = std::path::Path::new("/cache/lab/inception-2015-12-05.pt");
        let err = fetch_one_file(
            "inception",
            &feature_network_remote(),
            dest,
            &agent(),
            true,
            &feature_network_instructions(dest),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "inception: cannot download https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/\
             inception-2015-12-05.pt: LAB_OFFLINE is set. To get it by hand: mkdir -p /cache/lab && curl -L -o \
             /cache/lab/inception-2015-12-05.pt https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/\
             metrics/inception-2015-12-05.pt, or run `lab data fetch inception` when online"
        );
    }

    #[test]
    fn a_checksum_mismatch_is_reported_and_nothing_is_kept() {
        let bodies = idx_bodies();
        let base = serve(bodies.clone(), 2);
        let mut remote = test_idx_remote(&base, &bodies);
        remote.downloads[0].urls = vec![format!("{base}{}", bodies[0].0)];
        remote.downloads[0].checks = vec![Expected::Md5("0123456789abcdef0123456789abcdef".into())];
        let tmp = tempfile::tempdir().unwrap();
        let err = fetch_remote(&remote, tmp.path(), &agent(), false).unwrap_err().to_string();
        let part = tmp.path().join("fashion-mnist/train-images-idx3-ubyte.gz.part");
        let actual = match md5_of(&bodies[0].1) {
            Expected::Md5(h) => h,
            _ => unreachable!(),
        };
        assert_eq!(
            err,
            format!(
                "{}: MD5 checksum mismatch: expected 0123456789abcdef0123456789abcdef, found {actual}; the download is \
                 corrupt or the server changed the file (it was deleted); run `lab data fetch fashion-mnist` again",
                part.display()
            )
        );
        assert!(!part.exists());
        assert!(!tmp.path().join("fashion-mnist/train-images-idx3-ubyte.gz").exists());
    }

    /// A tar.gz like the canonical CIFAR-10 archive, with tiny batches.
    fn cifar_archive() -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut add = |name: &str, body: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, format!("cifar-10-batches-bin/{name}"), body).unwrap();
        };
        for i in 1..=5 {
            add(&format!("data_batch_{i}.bin"), &cifar::tests::bin_batch(i - 1, &[i as u8]));
        }
        add("test_batch.bin", &cifar::tests::bin_batch(0, &[7, 3]));
        add("batches.meta.txt", b"airplane\nautomobile\n");
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn cifar_archive_downloads_unpacks_and_loads() {
        let archive = cifar_archive();
        let base = serve(vec![("cifar-10-binary.tar.gz".into(), archive.clone())], 1);
        let mut remote = remote("cifar10").unwrap();
        remote.downloads[0].urls = vec![format!("{base}cifar-10-binary.tar.gz")];
        let mut h = Hasher::new();
        h.update(&archive);
        let d = h.finish();
        remote.downloads[0].checks = vec![Expected::Sha256(d.sha256), Expected::Md5(d.md5)];
        let tmp = tempfile::tempdir().unwrap();
        let dir = fetch_remote(&remote, tmp.path(), &agent(), false).unwrap();
        assert_eq!(dir, tmp.path().join("cifar-10-batches-bin"));
        assert!(dir.join("batches.meta.txt").is_file());
        assert!(!tmp.path().join("cifar-10-binary.tar.gz").exists(), "the archive is deleted once unpacked");
        assert!(!tmp.path().join(".cifar-10-batches-bin.unpacking").exists());
        let train = cifar::load_bin_dir(&dir, "train").unwrap();
        assert_eq!(Vec::<i64>::try_from(train.labels.as_ref().unwrap()).unwrap(), vec![1, 2, 3, 4, 5]);
        let test = cifar::load(tmp.path(), "test", false).unwrap();
        assert_eq!(test.images.size(), [2, 3, 32, 32]);
        assert_eq!(test.images.int64_value(&[1, 0, 0, 5]), i64::from(cifar::tests::pixel(1, 5)));
    }

    #[test]
    fn an_archive_put_in_the_root_by_hand_is_used_offline() {
        let archive = cifar_archive();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("cifar-10-binary.tar.gz");
        std::fs::write(&path, &archive).unwrap();
        let mut remote = remote("cifar10").unwrap();
        remote.downloads[0].checks = vec![Expected::Sha256(digest_file(&path).unwrap().sha256)];
        let dir = fetch_remote(&remote, tmp.path(), &agent(), true).unwrap();
        assert!(dir.join("test_batch.bin").is_file());
        // A corrupt one is reported and removed.
        std::fs::write(&path, b"garbage").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let err = fetch_remote(&remote, tmp.path(), &agent(), true).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: SHA-256 checksum mismatch: expected ", path.display())), "{err}");
        assert!(!path.exists());
    }
}
