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
//! record carries `file_version: "brain.Event:2"`. The messages are `tensorboard-proto`'s
//! generated types (TensorFlow's `event.proto`, `summary.proto`, `tensor.proto` and the hparams
//! plugin's protos), serialised by `protobuf`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use protobuf::well_known_types::Value as ProtoValue;
use protobuf::{Message, RepeatedField};
use tensorboard_proto::api::{DataType, Experiment, HParamInfo, MetricInfo, MetricName, Status};
use tensorboard_proto::event::Event;
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionEndInfo, SessionStartInfo};
use tensorboard_proto::summary::{Summary, SummaryMetadata, SummaryMetadata_PluginData, Summary_Image, Summary_Value};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::{TensorShapeProto, TensorShapeProto_Dim};
use tensorboard_proto::types::DataType as TensorDataType;
use tensorboard_rs::record_writer::RecordWriter;

use super::{GridImage, RunStatus, TrackError, Tracker};

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
        let mut ev = Event::new();
        ev.set_wall_time(now);
        ev.set_file_version("brain.Event:2".to_owned());
        tb.write_record(&ev)?;
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
        let mut v = Summary_Value::new();
        v.set_tag(tag.to_owned());
        // A oneof member: set even when 0.0, so the value is present.
        v.set_simple_value(value as f32);
        self.write_summary(step, wall_time, v)
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
        let dimension = |what: &str, n: u32| {
            i32::try_from(n).map_err(|_| TrackError::Invalid(format!("image `{tag}`: {what} {n} is too large")))
        };
        let mut img = Summary_Image::new();
        img.set_height(dimension("height", height)?);
        img.set_width(dimension("width", width)?);
        // The colorspace codes are the channel counts.
        img.set_colorspace(channels as i32);
        img.set_encoded_image_string(png.to_vec());
        let mut v = Summary_Value::new();
        v.set_tag(tag.to_owned());
        v.set_image(img);
        self.write_summary(step, wall_time, v)
    }

    /// Writes a text summary (rendered as Markdown by TensorBoard's text plugin): a scalar
    /// `DT_STRING` tensor with plugin name `text`.
    pub fn text(&mut self, tag: &str, text: &str, step: u64, wall_time: f64) -> Result<(), TrackError> {
        let mut t = TensorProto::new();
        t.set_dtype(TensorDataType::DT_STRING);
        // An empty shape: a scalar, which the text plugin shows as one block of Markdown.
        t.set_tensor_shape(TensorShapeProto::new());
        t.set_string_val(RepeatedField::from_vec(vec![text.as_bytes().to_vec()]));
        let mut v = Summary_Value::new();
        v.set_tag(tag.to_owned());
        // The plugin content is a serialized `TextPluginData { version: 0 }`, i.e. empty.
        v.set_metadata(plugin_metadata("text", Vec::new()));
        v.set_tensor(t);
        self.write_summary(step, wall_time, v)
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
        let mut start = SessionStartInfo::new();
        start.set_hparams(hparams.iter().map(|(name, value)| (name.clone(), protobuf_value(value))).collect());
        start.set_group_name(group.to_owned());
        start.set_start_time_secs(wall_time);
        let mut data = HParamsPluginData::new();
        data.set_session_start_info(start);
        self.write_hparams(HPARAMS_SESSION_START_TAG, &data, wall_time)?;
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
        let mut exp = Experiment::new();
        exp.set_time_created_secs(wall_time);
        for (name, value) in hparams {
            let mut info = HParamInfo::new();
            info.set_name(name.clone());
            info.set_field_type(match value {
                HParamValue::Str(_) => DataType::DATA_TYPE_STRING,
                HParamValue::Num(_) => DataType::DATA_TYPE_FLOAT64,
                HParamValue::Bool(_) => DataType::DATA_TYPE_BOOL,
            });
            exp.mut_hparam_infos().push(info);
        }
        for tag in metric_tags {
            let mut name = MetricName::new();
            name.set_tag((*tag).to_owned());
            let mut info = MetricInfo::new();
            info.set_name(name);
            exp.mut_metric_infos().push(info);
        }
        let mut data = HParamsPluginData::new();
        data.set_experiment(exp);
        self.write_hparams(HPARAMS_EXPERIMENT_TAG, &data, wall_time)
    }

    /// Writes `_hparams_/session_end_info` with the run's final status. Finished runs are
    /// reported as successful, failed and killed ones as failures (the plugin has no
    /// "killed").
    pub fn session_end(&mut self, status: RunStatus, wall_time: f64) -> Result<(), TrackError> {
        let mut end = SessionEndInfo::new();
        end.set_status(match status {
            RunStatus::Finished => Status::STATUS_SUCCESS,
            RunStatus::Failed | RunStatus::Killed => Status::STATUS_FAILURE,
        });
        end.set_end_time_secs(wall_time);
        let mut data = HParamsPluginData::new();
        data.set_session_end_info(end);
        self.write_hparams(HPARAMS_SESSION_END_TAG, &data, wall_time)?;
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
    fn write_hparams(&mut self, tag: &str, plugin_data: &HParamsPluginData, wall_time: f64) -> Result<(), TrackError> {
        let mut dim = TensorShapeProto_Dim::new();
        dim.set_size(0);
        let mut shape = TensorShapeProto::new();
        shape.mut_dim().push(dim);
        let mut null_tensor = TensorProto::new();
        null_tensor.set_dtype(TensorDataType::DT_FLOAT);
        null_tensor.set_tensor_shape(shape);
        let content = self.encode(plugin_data)?;
        let mut v = Summary_Value::new();
        v.set_tag(tag.to_owned());
        v.set_metadata(plugin_metadata("hparams", content));
        v.set_tensor(null_tensor);
        self.write_summary(0, wall_time, v)
    }

    /// Wraps one `Summary.Value` in a `Summary` and an `Event`, and writes it.
    fn write_summary(&mut self, step: u64, wall_time: f64, value: Summary_Value) -> Result<(), TrackError> {
        let mut summary = Summary::new();
        summary.mut_value().push(value);
        let mut ev = Event::new();
        ev.set_wall_time(wall_time);
        ev.set_step(i64::try_from(step).unwrap_or(i64::MAX));
        ev.set_summary(summary);
        self.write_record(&ev)
    }

    /// Serialises a message; a failure (only possible for a message missing required fields,
    /// which proto3 has none of) is reported against this event file.
    fn encode(&self, message: &impl Message) -> Result<Vec<u8>, TrackError> {
        message.write_to_bytes().map_err(|e| {
            TrackError::Invalid(format!("{}: cannot encode a TensorBoard record: {e}", self.path.display()))
        })
    }

    fn write_record(&mut self, event: &Event) -> Result<(), TrackError> {
        let bytes = self.encode(event)?;
        self.records.write(&bytes).map_err(|source| TrackError::Io { path: self.path.clone(), source })
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
fn plugin_metadata(plugin: &str, content: Vec<u8>) -> SummaryMetadata {
    let mut data = SummaryMetadata_PluginData::new();
    data.set_plugin_name(plugin.to_owned());
    data.set_content(content);
    let mut metadata = SummaryMetadata::new();
    metadata.set_plugin_data(data);
    metadata
}

/// The `google.protobuf.Value` for one hyperparameter.
fn protobuf_value(value: &HParamValue) -> ProtoValue {
    let mut v = ProtoValue::new();
    match value {
        HParamValue::Str(s) => v.set_string_value(s.clone()),
        HParamValue::Num(x) => v.set_number_value(*x),
        HParamValue::Bool(b) => v.set_bool_value(*b),
    }
    v
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
