//! A TensorBoard event-file writer: scalars, PNG images, text and hparams.
//!
//! We keep tensorboard-rs for the record framing (`RecordWriter` and its masked CRC-32C) but
//! not for its `FileWriter`: that one panics on I/O errors, writes from a background thread
//! that flushes only on drop, names its file with one-second resolution (two writers on a
//! folder in the same second clobber each other) and garbles non-square images. Here every
//! write is synchronous through a `BufWriter` and every failure is a [`TrackError`] naming
//! the file.
//!
//! An event file is a sequence of records, each a serialized `tensorflow.Event`; the first
//! record carries `file_version: "brain.Event:2"`. The messages are encoded by [`super::proto`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tensorboard_rs::record_writer::RecordWriter;

use super::proto::Msg;
use super::{GridImage, RunStatus, TrackError, Tracker};

/// Field numbers of `tensorflow.Event`.
mod event {
    pub const WALL_TIME: u32 = 1;
    pub const STEP: u32 = 2;
    pub const FILE_VERSION: u32 = 3;
    pub const SUMMARY: u32 = 5;
}

/// Field numbers of `tensorflow.Summary` and its nested messages.
mod summary {
    pub const VALUE: u32 = 1;
    // Summary.Value
    pub const TAG: u32 = 1;
    pub const SIMPLE_VALUE: u32 = 2;
    pub const IMAGE: u32 = 4;
    pub const TENSOR: u32 = 8;
    pub const METADATA: u32 = 9;
    // Summary.Image
    pub const IMAGE_HEIGHT: u32 = 1;
    pub const IMAGE_WIDTH: u32 = 2;
    pub const IMAGE_COLORSPACE: u32 = 3;
    pub const IMAGE_ENCODED: u32 = 4;
    // SummaryMetadata
    pub const PLUGIN_DATA: u32 = 1;
    // SummaryMetadata.PluginData
    pub const PLUGIN_NAME: u32 = 1;
    pub const PLUGIN_CONTENT: u32 = 2;
}

/// Field numbers of `tensorflow.TensorProto` and `TensorShapeProto`, and the dtypes we use.
mod tensor {
    pub const DTYPE: u32 = 1;
    pub const SHAPE: u32 = 2;
    pub const STRING_VAL: u32 = 8;
    pub const SHAPE_DIM: u32 = 2;
    pub const DIM_SIZE: u32 = 1;
    pub const DT_FLOAT: i64 = 1;
    pub const DT_STRING: i64 = 7;
}

/// Field numbers of the hparams plugin's messages (`plugin_data.proto`, `api.proto`).
mod hp {
    // HParamsPluginData
    pub const VERSION: u32 = 1;
    pub const EXPERIMENT: u32 = 2;
    pub const SESSION_START_INFO: u32 = 3;
    pub const SESSION_END_INFO: u32 = 4;
    // Experiment
    pub const EXP_TIME_CREATED_SECS: u32 = 3;
    pub const EXP_HPARAM_INFOS: u32 = 4;
    pub const EXP_METRIC_INFOS: u32 = 5;
    // HParamInfo
    pub const INFO_NAME: u32 = 1;
    pub const INFO_TYPE: u32 = 4;
    // MetricInfo / MetricName
    pub const METRIC_NAME: u32 = 1;
    pub const METRIC_NAME_TAG: u32 = 2;
    // SessionStartInfo
    pub const START_HPARAMS: u32 = 1;
    pub const START_GROUP_NAME: u32 = 4;
    pub const START_TIME_SECS: u32 = 5;
    // SessionEndInfo
    pub const END_STATUS: u32 = 1;
    pub const END_TIME_SECS: u32 = 2;
    // DataType
    pub const DATA_TYPE_STRING: i64 = 1;
    pub const DATA_TYPE_BOOL: i64 = 2;
    pub const DATA_TYPE_FLOAT64: i64 = 3;
    // Status
    pub const STATUS_SUCCESS: i64 = 1;
    pub const STATUS_FAILURE: i64 = 2;
    // map entries
    pub const MAP_KEY: u32 = 1;
    pub const MAP_VALUE: u32 = 2;
    // google.protobuf.Value
    pub const NUMBER_VALUE: u32 = 2;
    pub const STRING_VALUE: u32 = 3;
    pub const BOOL_VALUE: u32 = 4;
}

/// Tags the hparams plugin looks for.
pub const HPARAMS_EXPERIMENT_TAG: &str = "_hparams_/experiment";
/// See [`HPARAMS_EXPERIMENT_TAG`].
pub const HPARAMS_SESSION_START_TAG: &str = "_hparams_/session_start_info";
/// See [`HPARAMS_EXPERIMENT_TAG`].
pub const HPARAMS_SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// The value of one hyperparameter, as the hparams plugin can display and filter it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParamValue {
    /// Shown as text; filtered by a set of values.
    Str(String),
    /// Shown as a number; filtered by an interval.
    Num(f64),
    /// Shown as true/false.
    Bool(bool),
}

impl From<&str> for HParamValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}
impl From<String> for HParamValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<f64> for HParamValue {
    fn from(v: f64) -> Self {
        Self::Num(v)
    }
}
impl From<i64> for HParamValue {
    fn from(v: i64) -> Self {
        Self::Num(v as f64)
    }
}
impl From<bool> for HParamValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// Distinguishes event files created by this process within the same second (the file name's
/// last component, like TensorFlow's global uid).
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes one TensorBoard event file. Create one per run folder.
///
/// Writes go through a buffer: call [`flush`](Self::flush) (the [`Tracker`] methods do) to make
/// them visible to a running TensorBoard.
pub struct TensorBoard {
    path: PathBuf,
    records: RecordWriter<BufWriter<File>>,
    /// Whether [`hparams`](Self::hparams) opened a session, so that finishing closes it.
    session_open: bool,
}

impl std::fmt::Debug for TensorBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorBoard").field("path", &self.path).finish_non_exhaustive()
    }
}

impl TensorBoard {
    /// Creates a new event file in `dir` (which must exist), named
    /// `events.out.tfevents.<unix secs>.<hostname>.<pid>.<counter>`, and writes its
    /// `file_version` record. Never overwrites an existing file.
    pub fn create(dir: &Path) -> Result<Self, TrackError> {
        let now = unix_now();
        let host = hostname();
        let pid = std::process::id();
        let (path, file) = loop {
            let counter = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("events.out.tfevents.{}.{host}.{pid}.{counter}", now as u64);
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                // Another process with our pid (a container neighbour) got there first.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(TrackError::Io { path, source }),
            }
        };
        let mut tb = Self { path, records: RecordWriter::new(BufWriter::new(file)), session_open: false };
        let mut ev = Msg::new();
        ev.double(event::WALL_TIME, now).int(event::STEP, 0).string(event::FILE_VERSION, "brain.Event:2");
        tb.write_record(ev)?;
        // Flushed at once so that TensorBoard sees a valid file even if nothing else comes.
        tb.flush()?;
        Ok(tb)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a scalar. TensorBoard stores scalars as 32-bit floats (`simple_value`); the
    /// exact `f64` lives in `metrics.jsonl`.
    pub fn scalar(&mut self, tag: &str, value: f64, step: u64, wall_time: f64) -> Result<(), TrackError> {
        let mut v = Msg::new();
        v.string(summary::TAG, tag).float(summary::SIMPLE_VALUE, value as f32);
        self.write_summary(step, wall_time, &v)
    }

    /// Writes an already encoded PNG image of `height` × `width` pixels with `channels`
    /// channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
    #[allow(clippy::too_many_arguments)]
    pub fn image_png(
        &mut self,
        tag: &str,
        png: &[u8],
        height: u32,
        width: u32,
        channels: u32,
        step: u64,
        wall_time: f64,
    ) -> Result<(), TrackError> {
        if !(1..=4).contains(&channels) {
            return Err(TrackError::Invalid(format!(
                "image `{tag}`: {channels} channels; TensorBoard images have 1 to 4"
            )));
        }
        let mut img = Msg::new();
        img.int(summary::IMAGE_HEIGHT, height.into())
            .int(summary::IMAGE_WIDTH, width.into())
            // The colorspace codes are the channel counts.
            .int(summary::IMAGE_COLORSPACE, channels.into())
            .bytes(summary::IMAGE_ENCODED, png);
        let mut v = Msg::new();
        v.string(summary::TAG, tag).msg(summary::IMAGE, &img);
        self.write_summary(step, wall_time, &v)
    }

    /// Writes a text summary (rendered as Markdown by TensorBoard's text plugin): a scalar
    /// `DT_STRING` tensor with plugin name `text`.
    pub fn text(&mut self, tag: &str, text: &str, step: u64, wall_time: f64) -> Result<(), TrackError> {
        let mut t = Msg::new();
        t.int(tensor::DTYPE, tensor::DT_STRING)
            // An empty shape: a scalar, which the text plugin shows as one block of Markdown.
            .msg(tensor::SHAPE, &Msg::new())
            .bytes(tensor::STRING_VAL, text.as_bytes());
        let mut v = Msg::new();
        // The plugin content is a serialized `TextPluginData { version: 0 }`, i.e. empty.
        v.string(summary::TAG, tag).msg(summary::METADATA, &plugin_metadata("text", &[])).msg(summary::TENSOR, &t);
        self.write_summary(step, wall_time, &v)
    }

    /// Starts an hparams session for this run: writes `_hparams_/session_start_info` with the
    /// given hyperparameters. [`Tracker::finish`] then writes the matching
    /// `_hparams_/session_end_info`.
    ///
    /// Without an [`hparams_experiment`](Self::hparams_experiment) summary anywhere under the
    /// log directory, TensorBoard builds the table from all sessions: the union of their
    /// hparams, with domains inferred from the values, and their scalar tags as metrics.
    ///
    /// Sessions with the same non-empty `group` (e.g. a variant's runs over several seeds)
    /// are shown as one row with aggregated metrics; an empty `group` makes the run its own.
    pub fn hparams(
        &mut self,
        hparams: &BTreeMap<String, HParamValue>,
        group: &str,
        wall_time: f64,
    ) -> Result<(), TrackError> {
        let mut start = Msg::new();
        for (name, value) in hparams {
            let mut entry = Msg::new();
            entry.string(hp::MAP_KEY, name).msg(hp::MAP_VALUE, &protobuf_value(value));
            start.msg(hp::START_HPARAMS, &entry);
        }
        start.string(hp::START_GROUP_NAME, group).double(hp::START_TIME_SECS, wall_time);
        let mut data = Msg::new();
        data.int(hp::VERSION, 0).msg(hp::SESSION_START_INFO, &start);
        self.write_hparams(HPARAMS_SESSION_START_TAG, data, wall_time)?;
        self.session_open = true;
        Ok(())
    }

    /// Writes `_hparams_/experiment`: which hyperparameters and metric tags the hparams
    /// dashboard lists. TensorBoard takes this summary from the *first* run that has one and
    /// ignores the others, so write it once per log directory (or not at all, and let it infer
    /// the table from the sessions), not in every run of a comparison.
    pub fn hparams_experiment(
        &mut self,
        hparams: &BTreeMap<String, HParamValue>,
        metric_tags: &[&str],
        wall_time: f64,
    ) -> Result<(), TrackError> {
        let mut exp = Msg::new();
        exp.double(hp::EXP_TIME_CREATED_SECS, wall_time);
        for (name, value) in hparams {
            let ty = match value {
                HParamValue::Str(_) => hp::DATA_TYPE_STRING,
                HParamValue::Num(_) => hp::DATA_TYPE_FLOAT64,
                HParamValue::Bool(_) => hp::DATA_TYPE_BOOL,
            };
            let mut info = Msg::new();
            info.string(hp::INFO_NAME, name).int(hp::INFO_TYPE, ty);
            exp.msg(hp::EXP_HPARAM_INFOS, &info);
        }
        for tag in metric_tags {
            let mut name = Msg::new();
            name.string(hp::METRIC_NAME_TAG, tag);
            let mut info = Msg::new();
            info.msg(hp::METRIC_NAME, &name);
            exp.msg(hp::EXP_METRIC_INFOS, &info);
        }
        let mut data = Msg::new();
        data.int(hp::VERSION, 0).msg(hp::EXPERIMENT, &exp);
        self.write_hparams(HPARAMS_EXPERIMENT_TAG, data, wall_time)
    }

    /// Writes `_hparams_/session_end_info` with the run's final status. Finished runs are
    /// reported as successful, failed and killed ones as failures (the plugin has no
    /// "killed").
    pub fn session_end(&mut self, status: RunStatus, wall_time: f64) -> Result<(), TrackError> {
        let code = match status {
            RunStatus::Finished => hp::STATUS_SUCCESS,
            RunStatus::Failed | RunStatus::Killed => hp::STATUS_FAILURE,
        };
        let mut end = Msg::new();
        end.int(hp::END_STATUS, code).double(hp::END_TIME_SECS, wall_time);
        let mut data = Msg::new();
        data.int(hp::VERSION, 0).msg(hp::SESSION_END_INFO, &end);
        self.write_hparams(HPARAMS_SESSION_END_TAG, data, wall_time)?;
        self.session_open = false;
        Ok(())
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), TrackError> {
        self.records.flush().map_err(|source| TrackError::Io { path: self.path.clone(), source })
    }

    /// Flushes and closes the file. (Dropping also flushes, but cannot report errors.)
    pub fn close(mut self) -> Result<(), TrackError> {
        self.flush()
    }

    /// Writes an hparams plugin summary: metadata only, plus the empty float tensor that
    /// TensorBoard's own writer attaches so that data providers keep the value.
    fn write_hparams(&mut self, tag: &str, plugin_data: Msg, wall_time: f64) -> Result<(), TrackError> {
        let mut dim = Msg::new();
        dim.int(tensor::DIM_SIZE, 0);
        let mut shape = Msg::new();
        shape.msg(tensor::SHAPE_DIM, &dim);
        let mut null_tensor = Msg::new();
        null_tensor.int(tensor::DTYPE, tensor::DT_FLOAT).msg(tensor::SHAPE, &shape);
        let mut v = Msg::new();
        v.string(summary::TAG, tag)
            .msg(summary::METADATA, &plugin_metadata("hparams", &plugin_data.into_bytes()))
            .msg(summary::TENSOR, &null_tensor);
        self.write_summary(0, wall_time, &v)
    }

    /// Wraps one `Summary.Value` in a `Summary` and an `Event`, and writes it.
    fn write_summary(&mut self, step: u64, wall_time: f64, value: &Msg) -> Result<(), TrackError> {
        let mut s = Msg::new();
        s.msg(summary::VALUE, value);
        let mut ev = Msg::new();
        ev.double(event::WALL_TIME, wall_time).int(event::STEP, step as i64).msg(event::SUMMARY, &s);
        self.write_record(ev)
    }

    fn write_record(&mut self, event: Msg) -> Result<(), TrackError> {
        self.records.write(&event.into_bytes()).map_err(|source| TrackError::Io { path: self.path.clone(), source })
    }
}

impl Tracker for TensorBoard {
    fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> Result<(), TrackError> {
        let now = unix_now();
        for (tag, value) in values {
            self.scalar(tag, *value, step, now)?;
        }
        // Logging steps are rare next to training steps; flushing each one keeps a live
        // TensorBoard current and loses nothing on a crash.
        self.flush()
    }

    fn image(&mut self, step: u64, tag: &str, grid: &GridImage) -> Result<(), TrackError> {
        let png = grid.to_png()?;
        self.image_png(tag, &png, grid.height, grid.width, grid.channels, step, unix_now())?;
        self.flush()
    }

    fn text(&mut self, tag: &str, text: &str) -> Result<(), TrackError> {
        TensorBoard::text(self, tag, text, 0, unix_now())?;
        self.flush()
    }

    /// Closes the hparams session if [`TensorBoard::hparams`] opened one, and flushes.
    fn finish(&mut self, status: RunStatus) -> Result<(), TrackError> {
        if self.session_open {
            self.session_end(status, unix_now())?;
        }
        self.flush()
    }
}

/// `SummaryMetadata { plugin_data { plugin_name, content } }`.
fn plugin_metadata(plugin: &str, content: &[u8]) -> Msg {
    let mut pd = Msg::new();
    pd.string(summary::PLUGIN_NAME, plugin).bytes(summary::PLUGIN_CONTENT, content);
    let mut md = Msg::new();
    md.msg(summary::PLUGIN_DATA, &pd);
    md
}

/// The `google.protobuf.Value` for one hyperparameter.
fn protobuf_value(value: &HParamValue) -> Msg {
    let mut m = Msg::new();
    match value {
        HParamValue::Str(s) => m.string(hp::STRING_VALUE, s),
        HParamValue::Num(x) => m.double(hp::NUMBER_VALUE, *x),
        HParamValue::Bool(b) => m.bool(hp::BOOL_VALUE, *b),
    };
    m
}

/// Seconds since the Unix epoch, as TensorBoard's `wall_time`.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// This machine's name for the event-file name, as TensorFlow does; without one (or on a
/// system without `/proc`) `$HOSTNAME` or "localhost". Path separators and whitespace are
/// replaced so the name stays one path component.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    name.chars().map(|c| if c == '/' || c == '\\' || c.is_whitespace() { '_' } else { c }).collect()
}
