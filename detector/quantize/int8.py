"""Builds the INT8 YOLO11n model: static quantization with onnxruntime's tool.

Run by `cargo xtask setup` (through `cargo xtask quantize`), which caches the
result by the sha256 of everything that goes in (this script, the FP32 model,
the calibration photos and the pinned tool versions); it is deterministic
for the same inputs.

Choices, and why (the measurements are in BENCHMARKS.md):

* QDQ format, weights QInt8 per output channel, activations QUInt8, MinMax
  calibration: onnxruntime fuses QDQ pairs around Conv into QLinearConv /
  ConvInteger kernels (VNNI and AMX where the CPU has them, AVX2 otherwise).
* Calibration on real photographs shipped inside registry wheels, letterboxed
  exactly like the Rust pipeline does it (rect, stride 32, grey 114, /255).
  bus.jpg and zidane.jpg are kept OUT of calibration: they are the photos of
  the agreement test and of the benchmark, so both measure photos the
  quantizer has never seen.
* The Detect head's decoding stays in float (`--float decode`, the default):
  it concatenates box coordinates (0..640 pixels) with class scores (0..1)
  into one tensor, and one 8-bit scale for both rounds every score to 0 or
  to a step of ~2.5, so the fully quantized model finds nothing. The head's
  convolutions (`cv2`, `cv3` branches) are quantized. `--float head` keeps
  the whole head (`/model.23/`) in float, `--float none` nothing; `--measure`
  compares the variants on held-out photos. Measured on bus.jpg and
  zidane.jpg (8 FP32 detections with confidence >= 0.4): none 0/8 found;
  decode 8/8 (worst IoU 0.865); head 8/8 (worst IoU 0.866) but slower; only
  the last nine decoding nodes in float 7/8. So: decode.

Usage:
  int8.py --model yolo11n.onnx --out yolo11n-int8.onnx CALIBRATION_PHOTOS...
  int8.py --model yolo11n.onnx --measure HELD_OUT_PHOTOS -- CALIBRATION_PHOTOS...
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image, ImageOps

SIZE = 640
STRIDE = 32
PAD = 114
HEAD = "/model.23/"


def letterbox(path):
    """The Rust pipeline's rect letterbox (detector/src/geometry.rs)."""
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = img.size
    scale = min(SIZE / w, SIZE / h)
    nw = min(max(round(w * scale), 1), SIZE)
    nh = min(max(round(h * scale), 1), SIZE)
    cw = -(-nw // STRIDE) * STRIDE
    ch = -(-nh // STRIDE) * STRIDE
    canvas = Image.new("RGB", (cw, ch), (PAD, PAD, PAD))
    canvas.paste(img.resize((nw, nh), Image.BILINEAR), ((cw - nw) // 2, (ch - nh) // 2))
    x = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    return np.ascontiguousarray(x), (scale, (cw - nw) // 2, (ch - nh) // 2, nw / w, nh / h)


class Photos(CalibrationDataReader):
    def __init__(self, input_name, paths):
        self.items = iter([{input_name: letterbox(p)[0]} for p in paths])

    def get_next(self):
        return next(self.items, None)


def float_nodes(model_path, keep):
    """Names of the nodes left in float for a `--float` choice."""
    if keep == "none":
        return []
    nodes = onnx.load(model_path).graph.node
    head = [n.name for n in nodes if n.name.startswith(HEAD)]
    if keep == "head":
        return head
    # "decode": everything in the head except its convolution branches.
    return [n for n in head if not n.startswith((HEAD + "cv2", HEAD + "cv3"))]


def build(model, out, calibration, keep):
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        # Symbolic shape inference fails on this export; ONNX's own works.
        quant_pre_process(model, pre, skip_symbolic_shape=True)
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        reader = Photos(session.get_inputs()[0].name, calibration)
        partial = out + ".partial"
        quantize_static(
            pre,
            partial,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_nodes(pre, keep),
        )
        os.replace(partial, out)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def detect(sess, x, conf=0.25, iou=0.45):
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][0].T
    scores = out[:, 4:]
    cls = scores.argmax(1)
    score = scores[np.arange(len(cls)), cls]
    keep = score >= conf
    out, cls, score = out[keep], cls[keep], score[keep]
    boxes = np.stack(
        [out[:, 0] - out[:, 2] / 2, out[:, 1] - out[:, 3] / 2,
         out[:, 0] + out[:, 2] / 2, out[:, 1] + out[:, 3] / 2], 1)
    order = score.argsort()[::-1]
    kept = []
    for i in order:
        if all(cls[j] != cls[i] or box_iou(boxes[i], boxes[j]) <= iou for j in kept):
            kept.append(i)
    return [(int(cls[i]), float(score[i]), boxes[i]) for i in kept]


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def timed(sess, x, runs=10):
    sess.run(None, {sess.get_inputs()[0].name: x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {sess.get_inputs()[0].name: x})
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2] * 1e3


def measure(model, held_out, calibration):
    """Prints, per `--float` variant: agreement with FP32 and inference time."""
    fp32 = session(model)
    inputs = {p: letterbox(p)[0] for p in held_out}
    reference = {p: detect(fp32, x) for p, x in inputs.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for keep in ["none", "decode", "head"]:
            out = os.path.join(tmp, f"{keep}.onnx")
            t = time.perf_counter()
            build(model, out, calibration, keep)
            cost = time.perf_counter() - t
            q = session(out)
            matched = total = 0
            worst = 1.0
            for p, x in inputs.items():
                dets = detect(q, x)
                for c, s, b in reference[p]:
                    if s < 0.4:
                        continue
                    total += 1
                    best = max((box_iou(b, d[2]) for d in dets if d[0] == c), default=0.0)
                    worst = min(worst, best)
                    matched += best >= 0.8
            speed = [timed(fp32, x) / timed(q, x) for x in inputs.values()]
            print(
                f"float={keep:<7} nodes in float={len(float_nodes(model, keep)):>3} "
                f"build={cost:5.1f}s agreement={matched}/{total} worst IoU={worst:.3f} "
                f"fp32/int8 inference={np.median(speed):.2f}x"
            )
            sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the FP32 ONNX model")
    parser.add_argument("--out", help="where to write the INT8 model")
    parser.add_argument("--float", dest="keep", choices=["decode", "head", "none"],
                        default="decode", help="which part of the Detect head stays in float")
    parser.add_argument("--measure", nargs="+", metavar="HELD_OUT",
                        help="compare the variants on these photos instead of building")
    parser.add_argument("calibration", nargs="+", help="calibration photos")
    args = parser.parse_args()
    if args.measure:
        measure(args.model, args.measure, args.calibration)
    elif args.out:
        build(args.model, args.out, args.calibration, args.keep)
    else:
        parser.error("give --out or --measure")


if __name__ == "__main__":
    main()
