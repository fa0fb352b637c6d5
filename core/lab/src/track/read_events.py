#!/usr/bin/env python3
"""Read a run folder's TensorBoard event files with the real `tensorboard` package; print JSON.

Usage: read_events.py RUN_FOLDER [--pixels]

This is how the tests check that `lab`'s event files are what TensorBoard expects: the
records are framed and checksummed correctly (checked strictly here, since TensorBoard's
own loaders only log a bad checksum) and the summaries come out of TensorBoard's
`EventAccumulator` as scalars, images, text and hparams. Output (one JSON object):

  files           event-file names, sorted
  records         number of records per file (all CRCs verified)
  first_events    per file, the first event: {"wall_time", "step", "file_version"}
  scalars         {tag: [[step, value], ...]}      (value is the stored float32, widened;
                                                    NaN and infinities as strings)
  images          {tag: [{"step", "width", "height", "colorspace", "mode",
                          "decoded_width", "decoded_height", "pixels_sha256",
                          "pixels" (with --pixels: decoded bytes, row-major HWC)}]}
  texts           {tag: [[step, text], ...]}
  hparams         {tag: HParamsPluginData as a dict (protobuf field names)}

Needs `tensorboard` and Pillow (PNG decoding); exits with status 2 and a message if missing.
"""

import hashlib
import io
import json
import math
import os
import struct
import sys


def fail(message, status=2):
    print(f"read_events.py: {message}", file=sys.stderr)
    sys.exit(status)


try:
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util
    from google.protobuf import json_format
except ImportError as e:
    fail(f"the `tensorboard` package is needed: {e}")
try:
    from PIL import Image
except ImportError as e:
    fail(f"Pillow is needed to decode PNG images: {e}")


def num(x):
    """A float as JSON: non-finite values as the strings metrics.jsonl uses."""
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def read_records(path):
    """Yields the payload of each record, failing on a bad length or checksum."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            fail(f"{path}: truncated record header at byte {pos}", 1)
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if masked_crc32c(header) != header_crc:
            fail(f"{path}: bad header CRC at byte {pos}", 1)
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(data):
            fail(f"{path}: truncated record at byte {pos}", 1)
        payload = data[start:end]
        (payload_crc,) = struct.unpack("<I", data[end : end + 4])
        if masked_crc32c(payload) != payload_crc:
            fail(f"{path}: bad data CRC at byte {pos}", 1)
        yield payload
        pos = end + 4


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with_pixels = "--pixels" in sys.argv[1:]
    if len(args) != 1:
        fail("usage: read_events.py RUN_FOLDER [--pixels]")
    folder = args[0]
    if not os.path.isdir(folder):
        fail(f"{folder}: not a directory")
    files = sorted(n for n in os.listdir(folder) if "tfevents" in n)
    if not files:
        fail(f"{folder}: no event files")

    out = {"files": files, "records": {}, "first_events": {}}
    for name in files:
        payloads = list(read_records(os.path.join(folder, name)))
        out["records"][name] = len(payloads)
        first = event_pb2.Event.FromString(payloads[0]) if payloads else None
        out["first_events"][name] = first and {
            "wall_time": first.wall_time,
            "step": first.step,
            "file_version": first.file_version,
        }

    acc = ea.EventAccumulator(folder, size_guidance=dict(ea.STORE_EVERYTHING_SIZE_GUIDANCE))
    acc.Reload()
    tags = acc.Tags()

    out["scalars"] = {
        tag: [[e.step, num(e.value)] for e in acc.Scalars(tag)] for tag in sorted(tags[ea.SCALARS])
    }

    images = {}
    for tag in sorted(tags[ea.IMAGES]):
        entries = []
        for e in acc.Images(tag):
            img = Image.open(io.BytesIO(e.encoded_image_string))
            img.load()
            raw = img.tobytes()
            entry = {
                "step": e.step,
                "width": e.width,
                "height": e.height,
                "colorspace": None,
                "mode": img.mode,
                "decoded_width": img.width,
                "decoded_height": img.height,
                "pixels_sha256": hashlib.sha256(raw).hexdigest(),
            }
            if with_pixels:
                entry["pixels"] = list(raw)
            entries.append(entry)
        images[tag] = entries
    out["images"] = images

    # The accumulator keeps images' colorspace only in the raw events; read it from there.
    for name in files:
        for payload in read_records(os.path.join(folder, name)):
            event = event_pb2.Event.FromString(payload)
            for v in event.summary.value:
                if v.HasField("image"):
                    for entry in out["images"].get(v.tag, []):
                        if entry["step"] == event.step:
                            entry["colorspace"] = v.image.colorspace

    def plugin_tags(plugin):
        try:
            return acc.PluginTagToContent(plugin)
        except KeyError:
            return {}

    text_tags = set(plugin_tags("text"))
    out["texts"] = {
        tag: [
            [e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode("utf-8")]
            for e in acc.Tensors(tag)
        ]
        for tag in sorted(text_tags)
    }

    hparams = {}
    for tag, content in sorted(plugin_tags("hparams").items()):
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        hparams[tag] = json_format.MessageToDict(data, preserving_proto_field_name=True)
    out["hparams"] = hparams

    json.dump(out, sys.stdout, sort_keys=True, allow_nan=False)
    print()


if __name__ == "__main__":
    main()
