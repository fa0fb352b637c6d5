//! `metrics.jsonl`: every logged scalar, one JSON object a line. The source of truth for
//! reports.
//!
//! A line reads `{"step":N,"time":T,"key":"...","value":X}`: `time` is seconds since the run
//! started (continued across resumes), `value` the exact `f64`. Numbers are written in their
//! shortest round-trip form and read back with serde_json's `float_roundtrip` parser, so values
//! survive a write and a read bit for bit. Non-finite values (a diverged loss) are not JSON
//! numbers: they are written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (what
//! Python's `float()` accepts).
//!
//! A record is committed once its newline is on disk: a last line without one (a write cut
//! short by a crash) is ignored by [`read_metrics`] and removed by [`MetricsLog::append`] and
//! [`truncate_after`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{GridImage, RunStatus, TrackError, Tracker};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Training step the value belongs to.
    pub step: u64,
    /// Seconds since the run started.
    pub time: f64,
    /// Metric name, e.g. `loss/d` or `eval/fid`.
    pub key: String,
    /// The value, exactly as logged.
    pub value: f64,
}

impl Record {
    /// The record as one JSON line, without the newline.
    pub fn to_json_line(&self) -> String {
        // serde_json cannot fail on a `str`; the escaping is the only reason to use it here.
        let key = serde_json::to_string(&self.key).unwrap_or_else(|_| "\"\"".to_owned());
        format!(
            "{{\"step\":{},\"time\":{},\"key\":{key},\"value\":{}}}",
            self.step,
            json_f64(self.time),
            json_f64(self.value)
        )
    }

    /// Parses one line written by [`to_json_line`](Self::to_json_line) (or by anything else
    /// that writes the same four keys; extra keys are ignored).
    pub fn from_json_line(line: &str) -> Result<Self, String> {
        parse_record(line)
    }
}

/// Appends [`Record`]s to a `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
    started: Instant,
    /// Run time already spent before this process (on resume).
    time_offset: f64,
}

impl MetricsLog {
    /// Creates (or empties) the file for a new run; the run clock starts now at 0.
    pub fn create(path: &Path) -> Result<Self, TrackError> {
        let file = File::create(path).map_err(|e| io_err(path, e))?;
        Ok(Self::with_file(path, file, 0.0))
    }

    /// Opens the file for appending, creating it if needed, with the run clock starting at
    /// `time_offset` seconds. A torn last line is removed first so the next record starts on
    /// a line of its own.
    pub fn append(path: &Path, time_offset: f64) -> Result<Self, TrackError> {
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(path).map_err(|e| io_err(path, e))?;
        drop_torn_tail(&mut file).map_err(|e| io_err(path, e))?;
        Ok(Self::with_file(path, file, time_offset))
    }

    /// Resumes a run from its checkpoint at `step`: drops the records after `step` (see
    /// [`truncate_after`]) and appends, with the run clock continuing from the latest time
    /// kept. A missing file is created.
    pub fn resume(path: &Path, step: u64) -> Result<Self, TrackError> {
        let kept = if path.exists() { truncate_after(path, step)? } else { Vec::new() };
        let offset = kept.iter().map(|r| r.time).fold(0.0, f64::max);
        Self::append(path, offset)
    }

    fn with_file(path: &Path, file: File, time_offset: f64) -> Self {
        Self { path: path.to_owned(), out: BufWriter::new(file), started: Instant::now(), time_offset }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seconds since the run started, the `time` of records logged now.
    pub fn elapsed(&self) -> f64 {
        self.time_offset + self.started.elapsed().as_secs_f64()
    }

    /// Logs one value at the current run time.
    pub fn log(&mut self, step: u64, key: &str, value: f64) -> Result<(), TrackError> {
        let time = self.elapsed();
        self.write(&Record { step, time, key: key.to_owned(), value })
    }

    /// Writes one record as given (buffered; see [`flush`](Self::flush)).
    pub fn write(&mut self, record: &Record) -> Result<(), TrackError> {
        let mut line = record.to_json_line();
        line.push('\n');
        self.out.write_all(line.as_bytes()).map_err(|e| io_err(&self.path, e))
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), TrackError> {
        self.out.flush().map_err(|e| io_err(&self.path, e))
    }

    /// Flushes and asks the OS to put the data on disk.
    pub fn sync(&mut self) -> Result<(), TrackError> {
        self.flush()?;
        self.out.get_ref().sync_data().map_err(|e| io_err(&self.path, e))
    }
}

impl Tracker for MetricsLog {
    /// All values of one call share one `time`. Flushed at once: this file is the record of
    /// the run and must survive a crash.
    fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> Result<(), TrackError> {
        let time = self.elapsed();
        for (key, value) in values {
            self.write(&Record { step, time, key: key.clone(), value: *value })?;
        }
        self.flush()
    }

    /// Images are not part of `metrics.jsonl`.
    fn image(&mut self, _step: u64, _tag: &str, _grid: &GridImage) -> Result<(), TrackError> {
        Ok(())
    }

    /// Text is not part of `metrics.jsonl`.
    fn text(&mut self, _tag: &str, _text: &str) -> Result<(), TrackError> {
        Ok(())
    }

    fn finish(&mut self, _status: RunStatus) -> Result<(), TrackError> {
        self.sync()
    }
}

/// Reads every committed record of a `metrics.jsonl`, in file order. Blank lines are skipped;
/// a malformed line is an error naming the file and line, except a torn last line (no
/// newline), which is ignored.
pub fn read_metrics(path: &Path) -> Result<Vec<Record>, TrackError> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    Ok(parse_lines(path, &text)?.into_iter().map(|(_, r)| r).collect())
}

/// Keeps only the records with `step <= step` (a checkpoint's step, on resume), so that the
/// resumed run's records follow on without duplicates. The kept lines are copied verbatim to
/// a temporary file that then replaces the original, so a crash leaves either the old or the
/// new file. Returns the kept records. The file is left untouched if any line is malformed.
pub fn truncate_after(path: &Path, step: u64) -> Result<Vec<Record>, TrackError> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let mut kept_text = String::with_capacity(text.len());
    let mut kept = Vec::new();
    for (line, record) in parse_lines(path, &text)? {
        if record.step <= step {
            kept_text.push_str(line);
            kept_text.push('\n');
            kept.push(record);
        }
    }
    write_atomically(path, kept_text.as_bytes())?;
    Ok(kept)
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrackError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err(path, e))
    })();
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn io_err(path: &Path, source: io::Error) -> TrackError {
    TrackError::Io { path: path.to_owned(), source }
}

/// Parses a whole file into (line text, record) pairs, skipping blank lines and a torn tail.
fn parse_lines<'a>(path: &Path, text: &'a str) -> Result<Vec<(&'a str, Record)>, TrackError> {
    let mut out = Vec::new();
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_record(line) {
            Ok(r) => out.push((*line, r)),
            Err(_) if torn_tail && i + 1 == lines.len() => {}
            Err(message) => return Err(TrackError::Parse { path: path.to_owned(), line: i + 1, message }),
        }
    }
    Ok(out)
}

/// Truncates an append-mode file after its last newline, if its last byte is not one.
fn drop_torn_tail(file: &mut File) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Read backwards in chunks until a newline (usually found in the first chunk).
    let mut end = len;
    let mut buf = vec![0u8; 4096];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(());
        }
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return file.set_len(start + i as u64 + 1);
        }
        if start == 0 {
            return file.set_len(0);
        }
        end = start;
    }
}

/// Formats an `f64` for a record: shortest round-trip form, non-finite values as strings.
fn json_f64(x: f64) -> String {
    if x.is_nan() {
        "\"NaN\"".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" }.to_owned()
    } else {
        // Always succeeds for a finite number; ryu's shortest representation, e.g. `0.1`, `3.0`.
        serde_json::to_string(&x).unwrap_or_else(|_| x.to_string())
    }
}

/// A JSON number, or one of the strings non-finite values are written as.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Number {
    Finite(f64),
    Named(String),
}

impl Number {
    fn value(self, field: &str) -> Result<f64, String> {
        match self {
            Number::Finite(x) => Ok(x),
            Number::Named(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(format!("`{field}` is not a number: {s:?}")),
            },
        }
    }
}

#[derive(serde::Deserialize)]
struct RawRecord {
    step: u64,
    time: Number,
    key: String,
    value: Number,
}

/// Parses one line. serde_json is built with `float_roundtrip`, so numbers come back bit for bit.
fn parse_record(line: &str) -> Result<Record, String> {
    let raw: RawRecord = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(Record { step: raw.step, time: raw.time.value("time")?, key: raw.key, value: raw.value.value("value")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            0.1,
            1.0 / 3.0,
            -2.5e-300,
            1e300,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::EPSILON,
            123_456_789.123_456_79,
            std::f64::consts::PI,
            0.30000000000000004,
            9007199254740993.0,
        ];
        // Values with 17 significant digits and large exponents, where a fast, inexact float
        // parser goes wrong.
        let mut x = 0x1234_5678_9abc_def0_u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                v.push(f);
            }
        }
        v
    }

    #[test]
    fn values_round_trip_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let vals = values();
        let mut log = MetricsLog::create(&path).unwrap();
        for (i, v) in vals.iter().enumerate() {
            log.write(&Record { step: i as u64, time: *v, key: format!("k\"\\/\u{e9}\n{i}"), value: *v }).unwrap();
        }
        log.finish(RunStatus::Finished).unwrap();
        let back = read_metrics(&path).unwrap();
        assert_eq!(back.len(), vals.len());
        for (i, (r, v)) in back.iter().zip(&vals).enumerate() {
            assert_eq!(r.value.to_bits(), v.to_bits(), "value {i}: {v:e}");
            assert_eq!(r.time.to_bits(), v.to_bits(), "time {i}");
            assert_eq!(r.key, format!("k\"\\/\u{e9}\n{i}"));
            assert_eq!(r.step, i as u64);
        }
        eprintln!("{} values round-tripped exactly", vals.len());
    }

    #[test]
    fn line_format_and_non_finite_values() {
        let r = Record { step: 7, time: 1.5, key: "loss/d".into(), value: 0.1 };
        assert_eq!(r.to_json_line(), r#"{"step":7,"time":1.5,"key":"loss/d","value":0.1}"#);
        let r = Record { step: 0, time: 0.0, key: "x".into(), value: 3.0 };
        assert_eq!(r.to_json_line(), r#"{"step":0,"time":0.0,"key":"x","value":3.0}"#);
        // It is valid JSON.
        let v: serde_json::Value = serde_json::from_str(&r.to_json_line()).unwrap();
        assert_eq!(v["value"], 3.0);
        for (x, text) in [(f64::INFINITY, "\"Infinity\""), (f64::NEG_INFINITY, "\"-Infinity\"")] {
            let r = Record { step: 1, time: 0.0, key: "l".into(), value: x };
            assert!(r.to_json_line().ends_with(&format!("\"value\":{text}}}")));
            assert_eq!(Record::from_json_line(&r.to_json_line()).unwrap(), r);
        }
        let r = Record { step: 1, time: 0.0, key: "l".into(), value: f64::NAN };
        assert!(Record::from_json_line(&r.to_json_line()).unwrap().value.is_nan());
        // Other writers' spacing and extra keys are fine.
        let py = r#"{"step": 3, "time": 0.25, "key": "a", "value": "-Infinity", "extra": {"x": [1, 2]}}"#;
        let r = Record::from_json_line(py).unwrap();
        assert_eq!((r.step, r.time, r.key.as_str(), r.value), (3, 0.25, "a", f64::NEG_INFINITY));
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for bad in [
            r#"{"step":1,"time":0,"key":"a"}"#,
            r#"{"step":-1,"time":0,"key":"a","value":1}"#,
            r#"{"step":1.5,"time":0,"key":"a","value":1}"#,
            r#"{"step":1,"time":0,"key":"a","value":inf}"#,
            r#"{"step":1,"time":0,"key":"a","value":01}"#,
            r#"{"step":1,"time":0,"key":"a","value":1} x"#,
            r#"{"step":1,"time":0,"key":2,"value":1}"#,
            r#"{"step":1 "time":0,"key":"a","value":1}"#,
            "[]",
            "",
        ] {
            assert!(Record::from_json_line(bad).is_err(), "accepted {bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        fs::write(&path, "{\"step\":1,\"time\":0,\"key\":\"a\",\"value\":1}\nnot json\n{\"step\":2,\"time\":0,\"key\":\"a\",\"value\":1}\n").unwrap();
        let err = read_metrics(&path).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl:2:"), "{err}");
        // truncate_after refuses to rewrite it.
        let before = fs::read(&path).unwrap();
        assert!(truncate_after(&path, 1).is_err());
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn truncate_after_keeps_earlier_steps_verbatim_and_resume_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::create(&path).unwrap();
        for step in 0..10u64 {
            let time = step as f64 * 0.5;
            log.write(&Record { step, time, key: "loss/g".into(), value: 1.0 / (step as f64 + 3.0) }).unwrap();
            log.write(&Record { step, time, key: "loss/d".into(), value: -(step as f64) / 7.0 }).unwrap();
        }
        log.flush().unwrap();
        drop(log);
        let original = fs::read_to_string(&path).unwrap();
        // A crash in the middle of a write leaves a torn last line.
        fs::write(&path, format!("{original}{{\"step\":10,\"ti")).unwrap();
        assert_eq!(read_metrics(&path).unwrap().len(), 20);

        let kept = truncate_after(&path, 4).unwrap();
        assert_eq!(kept.len(), 10);
        assert!(kept.iter().all(|r| r.step <= 4));
        let text = fs::read_to_string(&path).unwrap();
        assert!(original.starts_with(&text), "kept lines are a verbatim prefix");
        assert_eq!(text.lines().count(), 10);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut log = MetricsLog::resume(&path, 4).unwrap();
        assert!(log.elapsed() >= 2.0, "clock continues from the last kept time");
        log.scalars(5, &[("loss/g".into(), 0.125)]).unwrap();
        drop(log);
        let back = read_metrics(&path).unwrap();
        assert_eq!(back.len(), 11);
        assert_eq!((back[10].step, back[10].key.as_str(), back[10].value), (5, "loss/g", 0.125));
        assert!(back[10].time >= 2.0);
    }

    #[test]
    fn append_removes_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let good = "{\"step\":1,\"time\":0.0,\"key\":\"a\",\"value\":1.0}\n";
        // A torn line longer than the 4096-byte read chunk.
        fs::write(&path, format!("{good}{{\"step\":2,\"key\":\"{}", "x".repeat(10_000))).unwrap();
        let mut log = MetricsLog::append(&path, 0.0).unwrap();
        log.log(2, "a", 2.0).unwrap();
        drop(log);
        let back = read_metrics(&path).unwrap();
        assert_eq!(back.iter().map(|r| r.value).collect::<Vec<_>>(), [1.0, 2.0]);
        assert!(fs::read_to_string(&path).unwrap().starts_with(good));
        // A file that is only a torn line becomes empty.
        fs::write(&path, "{\"ste").unwrap();
        drop(MetricsLog::append(&path, 0.0).unwrap());
        assert_eq!(fs::read(&path).unwrap().len(), 0);
    }
}
