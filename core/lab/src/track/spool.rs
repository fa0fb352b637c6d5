//! `mlflow-spool.jsonl` and `mlflow-sent`: the MLflow tracker's journal in the run folder.
//!
//! Everything the MLflow tracker will send (params, tags, metrics, artifact uploads, status
//! changes) is first appended here as one JSON line with a sequence number, on the training
//! thread and before any network I/O. Entries are sent strictly in sequence order, and
//! `mlflow-sent` holds the *watermark*: the number of leading entries the server has
//! acknowledged. Whatever lies past the watermark is what `lab sync` replays. MLflow's
//! `log-batch` is not idempotent (a metric sent twice appears twice in its history), so an
//! acknowledged entry is never sent again.
//!
//! A line reads `{"seq":7,"op":"metric","key":"loss/d","value":0.25,"step":40,"timestamp":1795…}`.
//! `seq` counts lines from 0, so entry `n` is line `n + 1`. Metric values are exact (serde_json
//! with `float_roundtrip`); non-finite values are written as the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"`, as in `metrics.jsonl`. A last line without its newline (a
//! write cut short by a crash) was never sent, and is dropped when the spool is reopened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::jsonl::write_atomically;
use super::TrackError;

/// The journal's file name in the run folder.
pub const SPOOL_FILE: &str = "mlflow-spool.jsonl";
/// The watermark's file name in the run folder.
pub const SENT_FILE: &str = "mlflow-sent";

/// A run status as MLflow names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MlflowStatus {
    /// In progress (also set again when a run is resumed).
    Running,
    /// Ran to its end.
    Finished,
    /// Stopped by an error.
    Failed,
    /// Interrupted, or its process ended without finishing the run.
    Killed,
}

impl MlflowStatus {
    /// The name MLflow's REST API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }
}

/// One thing to send to the MLflow server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// A run parameter (immutable on the server: the same value may be sent again).
    Param { key: String, value: String },
    /// A run tag (the server keeps the last value).
    Tag { key: String, value: String },
    /// One point of a metric's history.
    Metric {
        key: String,
        #[serde(with = "json_f64")]
        value: f64,
        step: u64,
        /// Milliseconds since the Unix epoch, when it was logged.
        timestamp: i64,
    },
    /// A file to upload: `local` is relative to the run folder (or absolute), `path` the
    /// folder inside the run's artifacts (`""` for the root); the file name is kept.
    Artifact { local: String, path: String },
    /// A change of the run's status; `end_time` in milliseconds since the Unix epoch.
    Status {
        status: MlflowStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_time: Option<i64>,
    },
}

/// An [`Entry`] with its sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spooled {
    /// Position in the journal, counting from 0.
    pub seq: u64,
    /// What to send.
    #[serde(flatten)]
    pub entry: Entry,
}

/// Appends entries to a run's `mlflow-spool.jsonl`.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    out: BufWriter<File>,
    next_seq: u64,
}

impl Spool {
    /// Opens (or creates) the spool of the run in `run_dir` for appending. A torn last line
    /// is removed first; numbering continues after the last entry.
    pub fn open(run_dir: &Path) -> Result<Self, TrackError> {
        let path = spool_path(run_dir);
        let existing = if path.exists() {
            parse(&path, &fs::read_to_string(&path).map_err(|e| io_err(&path, e))?)?
        } else {
            Parsed::default()
        };
        let file = OpenOptions::new().append(true).create(true).open(&path).map_err(|e| io_err(&path, e))?;
        if let Some(len) = existing.committed_len {
            file.set_len(len).map_err(|e| io_err(&path, e))?;
        }
        Ok(Self { path, out: BufWriter::new(file), next_seq: existing.entries.len() as u64 })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next entry will get (= the number of entries so far).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends `entries`, numbering them, and flushes them to the file before returning them
    /// numbered: the caller sends them only once they are on disk.
    pub fn append(&mut self, entries: impl IntoIterator<Item = Entry>) -> Result<Vec<Spooled>, TrackError> {
        let mut out = Vec::new();
        for entry in entries {
            let spooled = Spooled { seq: self.next_seq + out.len() as u64, entry };
            let mut line = serde_json::to_string(&spooled)
                .map_err(|e| TrackError::Invalid(format!("{}: {e}", self.path.display())))?;
            line.push('\n');
            self.out.write_all(line.as_bytes()).map_err(|e| io_err(&self.path, e))?;
            out.push(spooled);
        }
        self.out.flush().map_err(|e| io_err(&self.path, e))?;
        self.next_seq += out.len() as u64;
        Ok(out)
    }
}

/// The spool's path in `run_dir`.
pub fn spool_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SPOOL_FILE)
}

/// Reads every committed entry of a spool file, in order. A torn last line is ignored; a
/// malformed line, or one whose `seq` is not its position, is an error naming the line.
pub fn read_spool(path: &Path) -> Result<Vec<Spooled>, TrackError> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    Ok(parse(path, &text)?.entries)
}

/// The watermark of the run in `run_dir`: how many leading spool entries the server has
/// acknowledged (0 when nothing was ever sent).
pub fn read_sent(run_dir: &Path) -> Result<u64, TrackError> {
    let path = run_dir.join(SENT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| TrackError::Parse {
            path: path.clone(),
            line: 1,
            message: format!(
                "not a number of sent entries: {:?}; delete the file to resend the whole spool",
                text.trim()
            ),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(&path, e)),
    }
}

/// Records that the first `sent` spool entries are acknowledged (atomically: a crash leaves
/// the old or the new watermark).
pub fn write_sent(run_dir: &Path, sent: u64) -> Result<(), TrackError> {
    write_atomically(&run_dir.join(SENT_FILE), format!("{sent}\n").as_bytes())
}

#[derive(Default)]
struct Parsed {
    entries: Vec<Spooled>,
    /// Length of the committed prefix when the file ends in a torn line.
    committed_len: Option<u64>,
}

fn parse(path: &Path, text: &str) -> Result<Parsed, TrackError> {
    let (body, committed_len) = match text.rfind('\n') {
        _ if text.is_empty() || text.ends_with('\n') => (text, None),
        Some(i) => (&text[..=i], Some(i as u64 + 1)),
        None => ("", Some(0)),
    };
    let mut entries = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let bad = |message: String| TrackError::Parse { path: path.to_owned(), line: i + 1, message };
        let spooled: Spooled = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if spooled.seq != entries.len() as u64 {
            return Err(bad(format!(
                "sequence number {} where {} was expected: the spool was edited or two \
                 processes wrote to it",
                spooled.seq,
                entries.len()
            )));
        }
        entries.push(spooled);
    }
    Ok(Parsed { entries, committed_len })
}

fn io_err(path: &Path, source: io::Error) -> TrackError {
    TrackError::Io { path: path.to_owned(), source }
}

/// Exact `f64`s, with non-finite values as the strings Python's `float()` accepts.
mod json_f64 {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_nan() {
            s.serialize_str("NaN")
        } else if x.is_infinite() {
            s.serialize_str(if *x > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*x)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(F64)
    }

    struct F64;

    impl Visitor<'_> for F64 {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(step: u64, value: f64) -> Entry {
        Entry::Metric { key: "loss/d".into(), value, step, timestamp: 1_795_332_476_273 + step as i64 }
    }

    #[test]
    fn entries_round_trip_exactly_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let values = [0.1, -0.0, 5e-324, f64::MAX, 0.30000000000000004, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        let mut spool = Spool::open(dir.path()).unwrap();
        let mut written = spool
            .append([
                Entry::Param { key: "train.lr".into(), value: "0.0002".into() },
                Entry::Tag { key: "lab.version".into(), value: "0.1.0".into() },
            ])
            .unwrap();
        written.extend(spool.append(values.iter().enumerate().map(|(i, v)| metric(i as u64, *v))).unwrap());
        drop(spool);
        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.next_seq(), 10);
        written.extend(
            spool
                .append([
                    Entry::Artifact { local: "samples/step_000000.png".into(), path: "samples".into() },
                    Entry::Status { status: MlflowStatus::Finished, end_time: Some(7) },
                ])
                .unwrap(),
        );
        let back = read_spool(spool.path()).unwrap();
        assert_eq!(back.len(), 12);
        for (i, (b, w)) in back.iter().zip(&written).enumerate() {
            assert_eq!(b.seq, i as u64);
            match (&b.entry, &w.entry) {
                (Entry::Metric { value: x, .. }, Entry::Metric { value: y, .. }) => {
                    assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{x} {y}")
                }
                (x, y) => assert_eq!(x, y),
            }
        }
        let text = fs::read_to_string(spool.path()).unwrap();
        assert!(text.starts_with(r#"{"seq":0,"op":"param","key":"train.lr","value":"0.0002"}"#));
        assert!(text.contains(r#""value":"-Infinity""#), "{text}");
    }

    #[test]
    fn a_torn_tail_is_dropped_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append([metric(0, 1.0), metric(1, 2.0)]).unwrap();
        drop(spool);
        let path = spool_path(dir.path());
        let good = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{good}{{\"seq\":2,\"op\":\"met")).unwrap();
        assert_eq!(read_spool(&path).unwrap().len(), 2);
        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.next_seq(), 2);
        spool.append([metric(2, 3.0)]).unwrap();
        assert_eq!(read_spool(&path).unwrap().len(), 3);

        fs::write(&path, good.replace("\"seq\":1", "\"seq\":5")).unwrap();
        let err = read_spool(&path).unwrap_err().to_string();
        assert!(err.contains("mlflow-spool.jsonl:2:") && err.contains("sequence"), "{err}");
    }

    #[test]
    fn the_watermark_defaults_to_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_sent(dir.path()).unwrap(), 0);
        write_sent(dir.path(), 42).unwrap();
        assert_eq!(read_sent(dir.path()).unwrap(), 42);
        fs::write(dir.path().join(SENT_FILE), "x").unwrap();
        assert!(read_sent(dir.path()).unwrap_err().to_string().contains("mlflow-sent"));
    }
}
