"""Reference detection pipeline in Python: what a typical Python worker does.

Pillow decodes and draws, numpy prepares the tensor and postprocesses, and
onnxruntime (one thread, like one of our lanes) runs the same model. Square
640 letterbox, as most Python YOLO workers use. `detector bench` runs this
side by side with the Rust pipeline; it prints one JSON object per image.
"""

import argparse
import io
import json
import os
import statistics
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFont, ImageOps

SIZE = 640


def letterbox(img):
    w, h = img.size
    r = min(SIZE / w, SIZE / h)
    nw, nh = round(w * r), round(h * r)
    resized = img.resize((nw, nh), Image.BILINEAR)
    canvas = Image.new("RGB", (SIZE, SIZE), (114, 114, 114))
    left, top = (SIZE - nw) // 2, (SIZE - nh) // 2
    canvas.paste(resized, (left, top))
    return canvas, nw / w, nh / h, left, top


def nms(boxes, scores, iou):
    order = scores.argsort()[::-1]
    keep = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ious = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][ious <= iou]
    return keep


def pipeline(session, names, data, conf=0.25, iou=0.45):
    timings = {}
    t = time.perf_counter()
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    canvas, sx, sy, left, top = letterbox(img)
    x = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    t_infer = time.perf_counter()
    out = session.run(None, {session.get_inputs()[0].name: x})[0][0]
    timings["infer"] = time.perf_counter() - t_infer
    pred = out.T  # [anchors, 4 + classes]
    cls_scores = pred[:, 4:]
    cls = cls_scores.argmax(1)
    score = cls_scores[np.arange(len(cls)), cls]
    mask = score >= conf
    pred, cls, score = pred[mask], cls[mask], score[mask]
    boxes = np.stack(
        [pred[:, 0] - pred[:, 2] / 2, pred[:, 1] - pred[:, 3] / 2,
         pred[:, 0] + pred[:, 2] / 2, pred[:, 1] + pred[:, 3] / 2], 1)
    offset = boxes + cls[:, None] * 7680.0  # class-aware NMS by offsetting
    keep = nms(offset, score, iou)
    boxes, cls, score = boxes[keep], cls[keep], score[keep]
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - left) / sx).clip(0, img.width)
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - top) / sy).clip(0, img.height)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(12, round((img.width + img.height) / 2 * 0.03)))
    for b, c, s in zip(boxes, cls, score):
        draw.rectangle(list(b), outline=(255, 56, 56), width=3)
        draw.text((b[0], b[1]), f"{names[c]} {s:.2f}", fill=(255, 255, 255), font=font)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    timings["e2e"] = time.perf_counter() - t
    counts = {}
    for c in cls:
        counts[names[c]] = counts.get(names[c], 0) + 1
    return timings, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = eval(meta["names"], {"__builtins__": {}})  # the Ultralytics dict literal

    for path in args.images:
        data = open(path, "rb").read()
        for _ in range(3):
            pipeline(session, names, data)
        e2e, infer = [], []
        for _ in range(args.iterations):
            t, counts = pipeline(session, names, data)
            e2e.append(t["e2e"])
            infer.append(t["infer"])
        print(json.dumps({
            "image": os.path.basename(path),
            "e2e_ms": statistics.median(e2e) * 1e3,
            "infer_ms": statistics.median(infer) * 1e3,
            "counts": " ".join(f"{k}×{v}" for k, v in sorted(counts.items())),
        }), flush=True)


if __name__ == "__main__":
    main()
