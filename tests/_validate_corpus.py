"""A fixture corpus for the validation tests: a clean synthetic COCO set with one injected
defect per rule. ``build_defect_corpus`` returns the annotation paths, the images root and
``expected``: rule -> set of (image_id, annotation_id) that must be reported (None = any)."""
from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cvray.data.synth import make_coco


def _load(p):
    return json.loads(Path(p).read_text())


def _dump(p, doc):
    Path(p).write_text(json.dumps(doc))


def build_defect_corpus(root: Path, seed: int = 0):
    info = make_coco(root, n_images=40, seed=seed, image_size=(96, 96))
    img_root = Path(info["images_dir"])
    ann = {s: _load(p) for s, p in info["annotations"].items()}
    expected: dict[str, set] = {}

    def expect(rule, image_id=None, ann_id=None):
        expected.setdefault(rule, set()).add((image_id, ann_id))

    train, val = ann["train"], ann["val"]
    timgs = train["images"]
    # annotations per image of train, to pick targets that have some
    per_img = {}
    for a in train["annotations"]:
        if not a["iscrowd"]:
            per_img.setdefault(a["image_id"], []).append(a)
    rich = [i for i in timgs if len(per_img.get(i["id"], [])) >= 1]

    # ---- image defects (train split), one image each ------------------------------------
    def path(im):
        return img_root / im["file_name"]

    def rgb(im):
        return cv2.imread(str(path(im)))[..., ::-1]

    victims = iter(timgs)
    im = next(victims); path(im).write_bytes(b""); expect("image.zero_byte", im["id"])
    im = next(victims); path(im).write_bytes(b"\x13\x37not an image" * 20); expect("image.unreadable", im["id"])
    im = next(victims); d = path(im).read_bytes(); path(im).write_bytes(d[: len(d) // 2]); expect("image.truncated", im["id"])
    im = next(victims)
    bio = io.BytesIO(); Image.fromarray(rgb(im)).save(bio, "GIF"); path(im).write_bytes(bio.getvalue())
    expect("image.unsupported_format", im["id"])
    im = next(victims); im["height"] += 7; expect("image.size_mismatch", im["id"])
    im = next(victims)
    bio = io.BytesIO(); ex = Image.Exif(); ex[0x0112] = 6
    Image.fromarray(rgb(im)).save(bio, "JPEG", exif=ex); path(im).write_bytes(bio.getvalue())
    expect("image.exif_orientation", im["id"])
    im = next(victims)
    bio = io.BytesIO(); Image.fromarray(rgb(im)).convert("L").save(bio, "JPEG"); path(im).write_bytes(bio.getvalue())
    expect("image.grayscale", im["id"])
    im = next(victims)
    bio = io.BytesIO(); Image.fromarray(rgb(im)).convert("CMYK").save(bio, "JPEG"); path(im).write_bytes(bio.getvalue())
    expect("image.cmyk", im["id"])
    im = next(victims)
    new = im["file_name"].replace(".jpg", "_rgba.png")
    Image.fromarray(rgb(im)).convert("RGBA").save(img_root / new); im["file_name"] = new
    expect("image.alpha", im["id"])
    im = next(victims)
    new = im["file_name"].replace(".jpg", "_16bit.png")
    cv2.imwrite(str(img_root / new), rgb(im)[..., ::-1].astype(np.uint16) * 257); im["file_name"] = new
    expect("image.high_bit_depth", im["id"])
    im = next(victims); path(im).unlink(); expect("image.missing", im["id"])
    im = next(victims); im["file_name"] = "../../escape.jpg"; expect("image.path_escape", im["id"])

    # ---- schema / box / mask defects on val annotations ---------------------------------
    anns = [a for a in val["annotations"] if not a["iscrowd"]]
    vimgs = {i["id"]: i for i in val["images"]}
    small = sorted(anns, key=lambda a: a["area"])
    used: set[int] = set()

    def take(pred=lambda a: True):
        for a in small:
            if a["id"] not in used and pred(a):
                used.add(a["id"])
                return a
        raise RuntimeError("fixture ran out of annotations")

    a = take(lambda a: a["area"] < 0.01 * 96 * 96)
    a["bbox"] = [0.0, 0.0, 96.0, 96.0]; expect("mask.area_box_mismatch", a["image_id"], a["id"])
    a = take(); del a["bbox"]; expect("schema.missing_key", a["image_id"], a["id"])
    a = take(); a["category_id"] = str(a["category_id"]); expect("schema.wrong_type", a["image_id"], a["id"])
    a = take(); dup = copy.deepcopy(a); val["annotations"].append(dup); expect("schema.duplicate_id", a["image_id"], a["id"])
    a = take(); a["image_id"] = 99999; expect("schema.missing_image", 99999, a["id"])
    a = take(); a["category_id"] = 77; expect("schema.missing_category", a["image_id"], a["id"])
    a = take(); del a["iscrowd"]; expect("schema.missing_iscrowd", a["image_id"], a["id"])
    a = take(); a["bbox"][2] = float("nan"); expect("box.non_finite", a["image_id"], a["id"])
    a = take(); a["bbox"][3] = 0.0; expect("box.non_positive", a["image_id"], a["id"])
    a = take(); a["bbox"][0] = vimgs[a["image_id"]]["width"] + 10.0; expect("box.out_of_bounds", a["image_id"], a["id"])
    a = take(); a["bbox"] = [0.1, 0.2, 0.3, 0.25]; expect("box.normalized_coordinates", a["image_id"], a["id"])
    a = take(); a["segmentation"] = [[1.0, 2.0, 3.0, 4.0]]; expect("mask.polygon_too_few_points", a["image_id"], a["id"])
    a = take(); a["segmentation"] = []; expect("mask.empty", a["image_id"], a["id"])
    a = take(lambda a: isinstance(a["segmentation"], dict))
    a["segmentation"]["size"] = [97, 96]; expect("mask.rle_size_mismatch", a["image_id"], a["id"])
    a = take(lambda a: isinstance(a["segmentation"], dict))
    a["segmentation"]["counts"] = [5, 3]; expect("mask.invalid_rle", a["image_id"], a["id"])
    a = take(); a["area"] = a["area"] * 3 + 50; expect("mask.area_field_mismatch", a["image_id"], a["id"])
    a = take(); a["bbox"] = [a["bbox"][0], a["bbox"][1], 2.0, 2.0]; expect("box.tiny", a["image_id"], a["id"])
    # classes: an unused category, a rare one (too few + imbalance with imbalance_ratio=10)
    val["categories"].append({"id": 99, "name": "unused_shape", "supercategory": "shape"})
    expect("class.unused")
    val["categories"].append({"id": 98, "name": "rare_shape", "supercategory": "shape"})
    a = take(); a["category_id"] = 98
    expect("class.too_few"); expect("class.imbalance")
    # duplicate file name in val (a second record for an existing file)
    first = val["images"][0]
    val["images"].append({**first, "id": 5000})
    expect("schema.duplicate_file", 5000)

    # ---- leakage: cross-split near duplicates of a test image, placed in val -------------
    test = ann["test"]
    src = test["images"][0]
    src_rgb = cv2.imread(str(img_root / src["file_name"]))
    variants = {
        "reencoded": cv2.imencode(".jpg", src_rgb, [cv2.IMWRITE_JPEG_QUALITY, 55])[1].tobytes(),
        "resized": cv2.imencode(".jpg", cv2.resize(src_rgb, (72, 72), interpolation=cv2.INTER_AREA))[1].tobytes(),
        "brighter": cv2.imencode(".jpg", np.clip(src_rgb.astype(int) + 35, 0, 255).astype(np.uint8))[1].tobytes(),
        "exact": (img_root / src["file_name"]).read_bytes(),
    }
    leak_ids = {}
    for k, (name, data) in enumerate(variants.items()):
        fn = f"val/leak_{name}.jpg"
        (img_root / fn).write_bytes(data)
        h, w = (72, 72) if name == "resized" else (96, 96)
        iid = 6000 + k
        val["images"].append({"id": iid, "file_name": fn, "height": h, "width": w, "scene_id": 10_000 + k})
        leak_ids[name] = iid
        expect("leak.exact_duplicate" if name == "exact" else "leak.near_duplicate", iid)
    # an unrelated image (another seed's scene) must not pair with anything
    other = make_coco(root / "other", n_images=1, seed=seed + 100, image_size=(96, 96))
    oimg = next(Path(other["images_dir"]).rglob("*.jpg"))
    shutil.copy(oimg, img_root / "val" / "unrelated.jpg")
    val["images"].append({"id": 7000, "file_name": "val/unrelated.jpg", "height": 96, "width": 96,
                          "scene_id": 20_000})
    # group leakage: a val image claims a train scene
    val["images"][1]["scene_id"] = timgs[-1]["scene_id"]
    expect("leak.group")

    for s, doc in ann.items():
        _dump(info["annotations"][s], doc)
    broken = root / "coco" / "annotations" / "instances_broken.json"
    broken.write_text('{"images": [ {"id": 1,')
    expect("schema.invalid_json")
    return {"annotations": {**info["annotations"], "broken": str(broken)}, "images": str(img_root),
            "expected": expected, "source_image_id": src["id"], "leak_ids": leak_ids,
            "unrelated_id": 7000}
