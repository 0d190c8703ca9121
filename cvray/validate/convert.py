"""Format converters: COCO <-> YOLO txt, COCO video/track <-> MOTChallenge txt (pure core).

Coordinate conventions, stated once:

* COCO ``bbox`` = [x, y, w, h] in pixels, 0-based: the top-left pixel's left edge is x = 0.
* YOLO ``class cx cy w h`` normalised by the image width / height, class = 0-based index into
  the sorted category ids. Written with 17 significant digits; read back and rounded to
  ``PIXEL_DECIMALS`` decimals, so boxes with up to 6 decimals round-trip exactly.
* MOTChallenge rows ``frame, id, x, y, w, h, conf, class, visibility``: frames from 1 and
  1-based pixel coordinates, so ``x_mot = x_coco + 1``. COCO video records carry
  ``video_id`` and a 0-based ``frame_id`` (mmtracking's CocoVid), so ``frame = frame_id + 1``;
  annotations carry ``track_id``, ``mot_conf`` and ``visibility``.

Anything that a target format cannot hold (crowd regions in YOLO, annotations without a track
in MOT) is returned in ``skipped`` with the reason - never dropped silently.
"""
from __future__ import annotations

import configparser
import io
import json
import os
import posixpath
from collections import defaultdict
from typing import Any

import numpy as np

from cvray.io import storage

__all__ = ["PIXEL_DECIMALS", "coco_to_mot", "coco_to_yolo", "mot_to_coco", "read_mot_txt",
           "yolo_to_coco"]

PIXEL_DECIMALS = 6
YOLO_META = "cvray_yolo.json"


def _num(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.10g}"


# ----------------------------------------------------------------------------------- YOLO
def coco_to_yolo(doc: dict, out_uri: str, *, images: str | None = None, split: str | None = None
                 ) -> dict[str, Any]:
    """Write ``labels/<file stem path>.txt`` per image, ``data.yaml`` and a metadata file that
    lets :func:`yolo_to_coco` restore image/category/annotation ids exactly.

    ``labels`` counts the lines written. An annotation that cannot be a YOLO line (crowd region,
    unknown image or category, a NaN/inf or non-positive box) is returned in ``skipped`` with the
    reason. ``data.yaml`` names ``images`` (default ``images``) as ``train`` and ``val``: one COCO
    file is one split (``split``), so both keys name its images, as YOLO trainers require both.
    """
    cat_ids = sorted(c["id"] for c in doc["categories"])
    index = {cid: i for i, cid in enumerate(cat_ids)}
    names = {c["id"]: c["name"] for c in doc["categories"]}
    image_ids = {img["id"] for img in doc["images"]}
    per_image = defaultdict(list)
    skipped = []
    for a in doc["annotations"]:
        reason = _yolo_unfit(a, index, image_ids)
        if reason:
            skipped.append({"annotation_id": a.get("id"), "reason": reason})
            continue
        per_image[a["image_id"]].append(a)
    ann_ids = {}
    n_lines = 0
    for img in doc["images"]:
        w, h = float(img["width"]), float(img["height"])
        lines = []
        for a in per_image.get(img["id"], []):
            x, y, bw, bh = (float(v) for v in a["bbox"])
            lines.append(f"{index[a['category_id']]} {(x + bw / 2) / w:.17g} {(y + bh / 2) / h:.17g} "
                         f"{bw / w:.17g} {bh / h:.17g}")
            ann_ids.setdefault(str(img["id"]), []).append(a["id"])
        n_lines += len(lines)
        stem = posixpath.splitext(img["file_name"])[0]
        storage.write_bytes(storage.join(out_uri, "labels", stem + ".txt"),
                            ("\n".join(lines) + ("\n" if lines else "")).encode())
    yaml_names = "".join(f"  {i}: {json.dumps(names[cid])}\n" for i, cid in enumerate(cat_ids))
    img_dir = json.dumps(images or "images")
    storage.write_bytes(storage.join(out_uri, "data.yaml"), (
        f"# converted from one COCO split ({split or 'unnamed'}): train and val both name its images\n"
        f"path: .\ntrain: {img_dir}\nval: {img_dir}\nnc: {len(cat_ids)}\nnames:\n{yaml_names}").encode())
    meta = {"categories": [{"id": cid, "name": names[cid]} for cid in cat_ids],
            "images": [{k: img[k] for k in ("id", "file_name", "width", "height")}
                       for img in doc["images"]],
            "annotation_ids": ann_ids}
    storage.write_json(storage.join(out_uri, YOLO_META), meta)
    return {"images": len(doc["images"]), "labels": n_lines, "skipped": skipped}


def _yolo_unfit(a: dict, index: dict, image_ids: set) -> str | None:
    """Why annotation ``a`` cannot be a YOLO label line (None when it can)."""
    if a.get("iscrowd"):
        return "crowd region (YOLO has no iscrowd)"
    if a.get("image_id") not in image_ids:
        return f"image id {a.get('image_id')!r} not in the file"
    if a.get("category_id") not in index:
        return f"category id {a.get('category_id')!r} not in the file"
    try:
        x, y, bw, bh = (float(v) for v in a["bbox"])
    except (KeyError, TypeError, ValueError):
        return f"bbox {a.get('bbox')!r} is not 4 numbers"
    if not all(np.isfinite([x, y, bw, bh])) or bw <= 0 or bh <= 0:
        return f"bbox {a['bbox']!r} is not finite with positive size"
    return None


def _image_size(uri: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(storage.read_bytes(uri))) as im:
        return im.size


def yolo_to_coco(yolo_uri: str, images_uri: str | None = None) -> dict:
    """Read a YOLO label folder back into a COCO dict (boxes only, ``iscrowd`` 0).

    With the metadata written by :func:`coco_to_yolo` the ids are the original ones; without it
    image sizes are read from ``images_uri`` and ids are assigned in sorted file order.
    """
    meta_uri = storage.join(yolo_uri, YOLO_META)
    labels = storage.join(yolo_uri, "labels")
    if storage.exists(meta_uri):
        meta = storage.read_json(meta_uri)
        cats, images = meta["categories"], meta["images"]
        ann_ids = meta.get("annotation_ids", {})
    else:
        if images_uri is None:
            raise ValueError(f"{yolo_uri}: no {YOLO_META}; pass the images folder to read sizes")
        files = storage.list_files(labels, suffix=".txt")
        names = _yaml_names(storage.join(yolo_uri, "data.yaml"))
        cats = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
        images, ann_ids = [], {}
        for k, f in enumerate(files):
            rel = os.path.relpath(f, storage.resolve(labels)[1]) if not storage.is_s3(f) else \
                f[len(labels.rstrip("/")) + 1:]
            stem = posixpath.splitext(rel.replace(os.sep, "/"))[0]
            img_file = _find_image(images_uri, stem)
            w, h = _image_size(storage.join(images_uri, img_file))
            images.append({"id": k + 1, "file_name": img_file, "width": w, "height": h})
    cat_ids = [c["id"] for c in cats]
    anns, next_id = [], 1
    for img in images:
        stem = posixpath.splitext(img["file_name"])[0]
        uri = storage.join(labels, stem + ".txt")
        text = storage.read_bytes(uri).decode() if storage.exists(uri) else ""
        ids = ann_ids.get(str(img["id"]), [])
        for j, line in enumerate(ln for ln in text.splitlines() if ln.strip()):
            parts = line.split()
            if len(parts) != 5:
                raise ValueError(f"{uri}: line {j + 1} has {len(parts)} fields, expected 5 (class cx cy w h)")
            c, cx, cy, bw, bh = int(parts[0]), *(float(v) for v in parts[1:])
            W, H = img["width"], img["height"]
            box = [round((cx - bw / 2) * W, PIXEL_DECIMALS), round((cy - bh / 2) * H, PIXEL_DECIMALS),
                   round(bw * W, PIXEL_DECIMALS), round(bh * H, PIXEL_DECIMALS)]
            box = [v + 0.0 for v in box]  # no -0.0
            aid = ids[j] if j < len(ids) else next_id
            next_id = max(next_id, aid) + 1
            anns.append({"id": aid, "image_id": img["id"], "category_id": cat_ids[c], "bbox": box,
                         "area": box[2] * box[3], "iscrowd": 0})
    return {"images": images, "annotations": anns, "categories": cats}


def _yaml_names(uri: str) -> list[str]:
    import yaml

    data = yaml.safe_load(storage.read_bytes(uri)) if storage.exists(uri) else {}
    names = (data or {}).get("names", [])
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)


def _find_image(images_uri: str, stem: str) -> str:
    for ext in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
        if storage.exists(storage.join(images_uri, stem + ext)):
            return stem + ext
    raise FileNotFoundError(f"{images_uri}: no image for label {stem}.txt")


# ------------------------------------------------------------------------------------ MOT
def read_mot_txt(text: str, source: str = "<text>") -> np.ndarray:
    """Rows of a MOT gt/det file as an (N, 9+) float array; malformed lines name the file."""
    rows = []
    for k, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            vals = [float(v) for v in line.replace(" ", "").split(",")]
        except ValueError as exc:
            raise ValueError(f"{source}: line {k + 1} is not numeric ({exc})") from exc
        if len(vals) < 6:
            raise ValueError(f"{source}: line {k + 1} has {len(vals)} fields, expected >= 6")
        rows.append((vals + [1.0, 1.0, 1.0])[:9])
    return np.array(rows, dtype=np.float64).reshape(-1, 9)


def mot_to_coco(mot_root: str) -> dict:
    """Every ``<seq>/gt/gt.txt`` under a MOT root (or one sequence folder) as a COCO video dict."""
    from cvray.data.mot import read_seqinfo

    if storage.exists(storage.join(mot_root, "seqinfo.ini")):
        seq_uris = [mot_root]
    else:
        seq_uris = [storage.join(mot_root, d) for d in storage.list_dirs(mot_root)
                    if storage.exists(storage.join(mot_root, d, "seqinfo.ini"))]
    if not seq_uris:
        raise ValueError(f"{mot_root}: no MOTChallenge sequence (<seq>/seqinfo.ini) here, nor a YOLO "
                         "folder (labels/, data.yaml)")
    videos, images, anns, classes = [], [], [], set()
    for vid, seq in enumerate(seq_uris, start=1):
        info = read_seqinfo(storage.join(seq, "seqinfo.ini"))
        videos.append({"id": vid, "name": info.name, "width": info.width, "height": info.height,
                       "frame_rate": info.frame_rate, "seq_length": info.seq_length})
        first = len(images) + 1
        for f in range(1, info.seq_length + 1):
            images.append({"id": first + f - 1, "file_name": f"{info.name}/{info.im_dir}/{f:06d}{info.im_ext}",
                           "width": info.width, "height": info.height, "video_id": vid,
                           "frame_id": f - 1})
        gt_uri = storage.join(seq, "gt", "gt.txt")
        if not storage.exists(gt_uri):
            continue
        rows = read_mot_txt(storage.read_bytes(gt_uri).decode(), gt_uri)
        for r in rows:
            frame = int(r[0])
            if not 1 <= frame <= info.seq_length:
                raise ValueError(f"{gt_uri}: frame {frame} outside 1..{info.seq_length}")
            x, y, w, h = float(r[2]) - 1, float(r[3]) - 1, float(r[4]), float(r[5])
            classes.add(int(r[7]))
            anns.append({"id": len(anns) + 1, "image_id": first + frame - 1,
                         "category_id": int(r[7]), "bbox": [x, y, w, h], "area": w * h,
                         "iscrowd": 0, "track_id": int(r[1]), "mot_conf": float(r[6]),
                         "visibility": float(r[8])})
    cats = [{"id": c, "name": "pedestrian" if c == 1 else f"class_{c}"} for c in sorted(classes or {1})]
    return {"videos": videos, "images": images, "annotations": anns, "categories": cats}


def coco_to_mot(doc: dict, out_uri: str) -> dict[str, Any]:
    """Write ``<out>/<video name>/{seqinfo.ini, gt/gt.txt}`` from a COCO video dict."""
    videos = {v["id"]: v for v in doc.get("videos", [])}
    if not videos:
        raise ValueError("COCO document has no 'videos': not a video/track dataset")
    images = {i["id"]: i for i in doc["images"]}
    per_video = defaultdict(list)
    skipped = []
    for a in doc["annotations"]:
        img = images.get(a["image_id"])
        if img is None or "track_id" not in a or img.get("video_id") not in videos:
            skipped.append({"annotation_id": a.get("id"), "reason": "no track_id / video frame"})
            continue
        x, y, w, h = a["bbox"]
        per_video[img["video_id"]].append((img["frame_id"] + 1, a["track_id"], x + 1, y + 1, w, h,
                                           a.get("mot_conf", 1), a["category_id"],
                                           a.get("visibility", 1)))
    for vid, v in videos.items():
        frames = [i for i in doc["images"] if i.get("video_id") == vid]
        length = v.get("seq_length") or (max(i["frame_id"] for i in frames) + 1 if frames else 0)
        im_dir, ext = "img1", ".jpg"
        if frames:
            parts = frames[0]["file_name"].split("/")
            im_dir = parts[-2] if len(parts) >= 2 else im_dir
            ext = posixpath.splitext(parts[-1])[1] or ext
        cp = configparser.ConfigParser()
        cp.optionxform = str
        cp["Sequence"] = {"name": v["name"], "imDir": im_dir, "frameRate": _num(v.get("frame_rate", 30)),
                          "seqLength": str(length), "imWidth": str(v.get("width", frames[0]["width"] if frames else 0)),
                          "imHeight": str(v.get("height", frames[0]["height"] if frames else 0)),
                          "imExt": ext}
        buf = io.StringIO()
        cp.write(buf, space_around_delimiters=False)
        storage.write_bytes(storage.join(out_uri, v["name"], "seqinfo.ini"), buf.getvalue().encode())
        rows = sorted(per_video.get(vid, []), key=lambda r: (r[0], r[1]))
        text = "".join(",".join(_num(c) for c in r) + "\n" for r in rows)
        storage.write_bytes(storage.join(out_uri, v["name"], "gt", "gt.txt"), text.encode())
    return {"videos": len(videos), "rows": sum(map(len, per_video.values())), "skipped": skipped}
