//! A minimal protocol-buffers encoder for the handful of TensorBoard messages we write.
//!
//! tensorboard-rs depends on `tensorboard-proto` but does not re-export it, so its generated
//! message types cannot be named from this crate. The messages we need (`Event`, `Summary`,
//! `TensorProto`, the hparams plugin data and `google.protobuf.Value`) are small, and their
//! wire format is stable, so we encode them directly. Field numbers are taken from
//! TensorFlow's `event.proto`, `summary.proto`, `tensor.proto`, `tensor_shape.proto`,
//! TensorBoard's `plugins/hparams/{api,plugin_data}.proto` and `google/protobuf/struct.proto`;
//! the tests read the result back with the real `tensorboard` Python package.
//!
//! Every setter writes its field unconditionally. That matters for `oneof` members, where
//! presence is significant even for a default value (a scalar of `0.0` must still be written).

/// A message under construction: its encoded fields, in the order they were added.
#[derive(Debug, Default, Clone)]
pub(crate) struct Msg {
    buf: Vec<u8>,
}

/// Wire types of the protobuf encoding.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

impl Msg {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The encoded message.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from(field << 3 | wire_type));
    }

    /// `int32`, `int64` and enum fields. Negative values take ten bytes, as the spec says
    /// (they are sign-extended to 64 bits); we never write any.
    pub(crate) fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, VARINT);
        self.varint(v as u64);
        self
    }

    pub(crate) fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.int(field, i64::from(v))
    }

    pub(crate) fn double(&mut self, field: u32, v: f64) -> &mut Self {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// `bytes` fields.
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub(crate) fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    /// An embedded message (also one element of a `repeated` message field, or a map entry).
    pub(crate) fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_examples_from_the_protobuf_docs() {
        // "message Test1 { int32 a = 1; }" with a = 150 encodes as 08 96 01.
        let mut m = Msg::new();
        m.int(1, 150);
        assert_eq!(m.clone().into_bytes(), [0x08, 0x96, 0x01]);
        // "message Test2 { string b = 2; }" with b = "testing".
        let mut s = Msg::new();
        s.string(2, "testing");
        assert_eq!(s.clone().into_bytes(), b"\x12\x07testing");
        // "message Test3 { Test1 c = 3; }" embeds Test1.
        let mut outer = Msg::new();
        outer.msg(3, &m);
        assert_eq!(outer.into_bytes(), [0x1a, 0x03, 0x08, 0x96, 0x01]);
    }

    #[test]
    fn fixed_width_fields_are_little_endian() {
        let mut m = Msg::new();
        m.double(1, 1.0).float(2, 1.0);
        assert_eq!(m.into_bytes(), [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x15, 0, 0, 0x80, 0x3f]);
    }
}
