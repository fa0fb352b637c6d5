//! `mlflow-sent.json`: what of the run folder the MLflow server has confirmed, and the rows of
//! `metrics.jsonl` past it.
//!
//! Metric rows are tracked by position: `metric_rows` records (`metric_bytes` bytes, ending
//! in `last_row`) are confirmed. `last_row` lets a later process check that the file is
//! still the one the watermark was written for (a resume rewrites `metrics.jsonl`, keeping
//! only the rows up to its checkpoint); when it is not, every row is treated as in doubt. The
//! watermark is written atomically, so a crash leaves the old or the new one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::MlflowStatus;
use crate::track::jsonl::write_atomically;
use crate::track::{Record, TrackError};

/// The watermark's file name in the run folder.
pub const WATERMARK_FILE: &str = "mlflow-sent.json";

/// The content of `mlflow-sent.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The MLflow run it was written for; for another run, nothing counts as sent.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Leading records of `metrics.jsonl` the server confirmed.
    pub metric_rows: u64,
    /// Their length in bytes: where the next row to send starts.
    pub metric_bytes: u64,
    /// The last confirmed line, without its newline.
    #[serde(default)]
    pub last_row: String,
    /// The end (in bytes) of a metrics batch sent without a confirmation yet: rows between
    /// `metric_bytes` and this may already be on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_end: Option<u64>,
    /// Fingerprint of the params and tags last confirmed.
    #[serde(default)]
    pub params_tags: String,
    /// The run status last confirmed.
    #[serde(default)]
    pub status: Option<MlflowStatus>,
    /// Artifacts last confirmed: path in the run folder → fingerprint (size and mtime).
    #[serde(default)]
    pub artifacts: BTreeMap<String, String>,
}

impl Watermark {
    /// Reads `run_dir/mlflow-sent.json`; a missing file is an empty watermark.
    pub fn load(run_dir: &Path) -> Result<Self, TrackError> {
        let path = run_dir.join(WATERMARK_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TrackError::Parse {
                path,
                line: e.line(),
                message: format!("{e}; delete the file to send the whole run folder again"),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(TrackError::Io { path, source: e }),
        }
    }

    /// Writes it atomically.
    pub fn save(&self, run_dir: &Path) -> Result<(), TrackError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| TrackError::Invalid(format!("{WATERMARK_FILE}: {e}")))?;
        write_atomically(&run_dir.join(WATERMARK_FILE), format!("{text}\n").as_bytes())
    }

    /// Fits the watermark to the run `run_id` and to `metrics` as it is now. A watermark of
    /// another run is reset: that run holds nothing of this folder. The whole file is put in
    /// doubt when the confirmed rows are no longer the file's first rows, and when there is no
    /// watermark for a run that `existed` before (a folder tracked by an older lab, or a
    /// deleted watermark): what the server holds is then found in its history, not resent.
    /// Returns whether it changed.
    pub fn reconcile(&mut self, run_id: &str, metrics: &Path, existed: bool) -> Result<bool, TrackError> {
        let all_in_doubt = match self.run_id.as_deref() {
            Some(id) if id == run_id => self.metric_bytes > 0 && !self.last_row_is_at_its_place(metrics)?,
            Some(_) => false,
            None => existed,
        };
        if self.run_id.as_deref() != Some(run_id) {
            *self = Self { run_id: Some(run_id.to_owned()), ..Self::default() };
        } else if !all_in_doubt {
            return Ok(false);
        }
        if all_in_doubt {
            self.metric_rows = 0;
            self.metric_bytes = 0;
            self.last_row.clear();
            self.in_flight_end = Some(fs::metadata(metrics).map_or(0, |m| m.len()));
        }
        Ok(true)
    }

    fn last_row_is_at_its_place(&self, metrics: &Path) -> Result<bool, TrackError> {
        let want = format!("{}\n", self.last_row);
        let Some(start) = self.metric_bytes.checked_sub(want.len() as u64) else { return Ok(false) };
        let mut file = match File::open(metrics) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(metrics, e)),
        };
        let mut bytes = vec![0; want.len()];
        let read = file.seek(SeekFrom::Start(start)).and_then(|_| io::Read::read_exact(&mut file, &mut bytes));
        Ok(read.is_ok() && bytes == want.as_bytes())
    }
}

/// One committed row of `metrics.jsonl`.
#[derive(Debug, Clone)]
pub struct Row {
    /// The line, without its newline.
    pub line: String,
    /// Where the line (with its newline) ends in the file.
    pub end: u64,
    /// The parsed record.
    pub record: Record,
}

/// Up to `max_rows` rows of `metrics.jsonl` from byte `from`, and at least the rows up to byte
/// `at_least_to`. Only lines with their newline count: a line still being written is left for
/// later. Blank lines are skipped; a missing file has no rows.
pub fn read_rows(metrics: &Path, from: u64, max_rows: usize, at_least_to: u64) -> Result<Vec<Row>, TrackError> {
    let file = match File::open(metrics) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(metrics, e)),
    };
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(from)).map_err(|e| io_err(metrics, e))?;
    let mut rows = Vec::new();
    let mut end = from;
    let mut line = String::new();
    while rows.len() < max_rows || end < at_least_to {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| io_err(metrics, e))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        end += n as u64;
        let text = line.trim_end_matches('\n');
        if text.trim().is_empty() {
            continue;
        }
        let record = Record::from_json_line(text).map_err(|message| TrackError::Parse {
            path: metrics.to_owned(),
            line: 0,
            message: format!("the row ending at byte {end}: {message}"),
        })?;
        rows.push(Row { line: text.to_owned(), end, record });
    }
    Ok(rows)
}

fn io_err(path: &Path, source: io::Error) -> TrackError {
    TrackError::Io { path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: u64) -> String {
        Record { step, time: step as f64 * 0.5, key: "loss/d".into(), value: 1.0 / (step as f64 + 1.0) }.to_json_line()
    }

    #[test]
    fn rows_are_read_from_an_offset_and_a_line_being_written_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        fs::write(&path, format!("{}\n\n{}\n{}\n{{\"step\":3,\"ti", line(0), line(1), line(2))).unwrap();
        let all = read_rows(&path, 0, usize::MAX, 0).unwrap();
        assert_eq!(
            all.iter().map(|r| r.record.step).collect::<Vec<_>>(),
            [0, 1, 2],
            "blank and torn lines are not rows"
        );
        assert_eq!(all[2].end, fs::read_to_string(&path).unwrap().rfind('\n').unwrap() as u64 + 1);
        let two = read_rows(&path, 0, 2, 0).unwrap();
        assert_eq!(two.len(), 2);
        let rest = read_rows(&path, two[1].end, 10, 0).unwrap();
        assert_eq!((rest.len(), rest[0].line.as_str()), (1, line(2).as_str()));
        assert_eq!(read_rows(&path, 0, 1, all[2].end).unwrap().len(), 3, "at least up to a byte");
        assert!(read_rows(&dir.path().join("missing"), 0, 10, 0).unwrap().is_empty());
    }

    #[test]
    fn a_watermark_is_fitted_to_its_run_and_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        fs::write(&path, format!("{}\n{}\n{}\n", line(0), line(1), line(2))).unwrap();
        let rows = read_rows(&path, 0, 2, 0).unwrap();
        let confirmed = Watermark {
            run_id: Some("r1".into()),
            metric_rows: 2,
            metric_bytes: rows[1].end,
            last_row: rows[1].line.clone(),
            status: Some(MlflowStatus::Running),
            ..Watermark::default()
        };
        confirmed.save(dir.path()).unwrap();
        let mut mark = Watermark::load(dir.path()).unwrap();
        assert_eq!(mark, confirmed);
        assert!(!mark.reconcile("r1", &path, true).unwrap(), "the file still starts with the confirmed rows");

        // A resume kept step 0 only and logged a new step 1: everything is in doubt.
        fs::write(&path, format!("{}\n{}\n", line(0), line(1).replace("0.5", "0.25"))).unwrap();
        assert!(mark.reconcile("r1", &path, true).unwrap());
        assert_eq!(
            (mark.metric_rows, mark.metric_bytes, mark.in_flight_end),
            (0, 0, Some(fs::metadata(&path).unwrap().len()))
        );
        assert_eq!(mark.status, Some(MlflowStatus::Running), "only the metric rows are in doubt");

        // Another MLflow run holds none of it.
        let mut other = confirmed.clone();
        assert!(other.reconcile("r2", &path, true).unwrap());
        assert_eq!(other, Watermark { run_id: Some("r2".into()), ..Watermark::default() });

        // No watermark: nothing is in doubt for a run created just now, everything for an
        // existing one.
        let mut none = Watermark::load(&dir.path().join("nowhere")).unwrap();
        assert_eq!(none, Watermark::default());
        assert!(none.reconcile("r3", &path, false).unwrap());
        assert_eq!(none.in_flight_end, None);
        let mut none = Watermark::default();
        assert!(none.reconcile("r3", &path, true).unwrap());
        assert_eq!(none.in_flight_end, Some(fs::metadata(&path).unwrap().len()));
    }
}
