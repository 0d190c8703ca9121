"""Detections record ↔ Arrow and the post-processing policy (threshold, NMS, Soft-NMS, max dets)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pycocotools import mask as mask_utils

from cvray.predict.config import PostprocessConfig
from cvray.predict.postprocess import policy_record, postprocess, soft_nms
from cvray.predict.records import (PREDICTIONS_SCHEMA, Detections, RecordError, detections_from_table,
                                   detections_to_table, to_coco_results)


def _rle(h, w, box):
    m = np.zeros((h, w), np.uint8, order="F")
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = 1
    return mask_utils.encode(np.asfortranarray(m))


def test_arrow_round_trip_with_masks_and_video_fields(tmp_path):
    d1 = Detections(7, 20, 30, [[1, 2, 10, 12], [0, 0, 5, 5]], [0.9, 0.4], [3, 1],
                    masks=[_rle(20, 30, (1, 2, 10, 12)), _rle(20, 30, (0, 0, 5, 5))],
                    file_name="v.mp4", frame_index=12, timestamp_s=0.48)
    d2 = Detections(8, 20, 30, np.zeros((0, 4)), [], [], masks=[])
    table = detections_to_table([d1, d2])
    assert table.schema.equals(PREDICTIONS_SCHEMA, check_metadata=True)
    import pyarrow.parquet as pq
    pq.write_table(table, tmp_path / "p.parquet")
    back = detections_from_table(pq.read_table(tmp_path / "p.parquet"))
    assert [b.image_id for b in back] == [7, 8]
    np.testing.assert_array_equal(back[0].boxes, d1.boxes)
    np.testing.assert_array_equal(back[0].scores, d1.scores)
    np.testing.assert_array_equal(back[0].labels, [3, 1])
    assert (back[0].frame_index, back[0].timestamp_s, back[0].file_name) == (12, 0.48, "v.mp4")
    assert len(back[1]) == 0 and back[1].boxes.shape == (0, 4)
    dec = mask_utils.decode([{"size": m["size"], "counts": m["counts"]} for m in back[0].masks])
    assert dec[:, :, 0].sum() == 9 * 10 and dec[:, :, 1].sum() == 25
    coco = to_coco_results(back)
    assert coco[0]["bbox"] == [1.0, 2.0, 9.0, 10.0] and coco[0]["category_id"] == 3
    assert isinstance(coco[0]["segmentation"]["counts"], str)


def test_schema_version_and_lengths_checked():
    with pytest.raises(RecordError, match="image_id=5"):
        Detections(5, 10, 10, [[0, 0, 1, 1]], [0.5, 0.6], [1])
    t = detections_to_table([Detections(1, 4, 4, [[0, 0, 1, 1]], [1.0], [1])])
    old = t.replace_schema_metadata({b"cvray.table": b"predictions", b"cvray.schema_version": b"0"})
    with pytest.raises(RecordError, match="version '0'"):
        detections_from_table(old)
    with pytest.raises(RecordError, match="lacks columns"):
        detections_from_table(pa.table({"image_id": [1]}))


def _det(boxes, scores, labels):
    return Detections(1, 100, 100, boxes, scores, labels)


BOXES = [[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60]]
# IoU(box0, box1) = 90/100 = 0.9; box3 == box0 but another class


def test_threshold_classwise_agnostic_nms_and_max_dets():
    det = _det(BOXES, [0.9, 0.8, 0.7, 0.6, 0.01], [1, 1, 1, 2, 1])
    out = postprocess(det, PostprocessConfig(score_threshold=0.05, nms="classwise", nms_iou=0.5))
    np.testing.assert_allclose(out.scores, [0.9, 0.7, 0.6])  # box1 suppressed, box4 thresholded
    np.testing.assert_array_equal(out.labels, [1, 1, 2])
    out = postprocess(det, PostprocessConfig(score_threshold=0.05, nms="agnostic", nms_iou=0.5))
    np.testing.assert_allclose(out.scores, [0.9, 0.7])       # box3 removed across classes
    out = postprocess(det, PostprocessConfig(score_threshold=0.0, nms="none", max_detections=2))
    np.testing.assert_allclose(out.scores, [0.9, 0.8])
    assert det.scores.shape == (5,)  # input record untouched


def test_soft_nms_linear_and_gaussian_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [0, 0, 10, 5]], float)
    scores = np.array([0.9, 0.8, 0.7])
    # IoU(0,1)=0.9, IoU(0,2)=0.5, IoU(1,2)=50/90
    keep, s = soft_nms(boxes, scores, method="linear", iou_threshold=0.3, sigma=0.5, min_score=0.0)
    # after M=0: s1 = .8*.1 = .08, s2 = .7*.5 = .35 → M=2, then s1 = .08*(1-5/9)
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(s, [0.9, 0.35, 0.08 * (4 / 9)], rtol=1e-12)
    keep, s = soft_nms(boxes, scores, method="gaussian", iou_threshold=0.3, sigma=0.5, min_score=0.0)
    s1 = 0.8 * np.exp(-0.81 / 0.5)
    s2 = 0.7 * np.exp(-0.25 / 0.5)
    assert s2 > s1
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(s, [0.9, s2, s1 * np.exp(-(5 / 9) ** 2 / 0.5)], rtol=1e-12)
    keep, _ = soft_nms(boxes, scores, method="linear", iou_threshold=0.3, sigma=0.5, min_score=0.1)
    np.testing.assert_array_equal(keep, [0, 2])  # box1 decayed to 0.08 < 0.1


def test_soft_nms_in_postprocess_is_classwise():
    det = _det(BOXES[:4], [0.9, 0.8, 0.7, 0.6], [1, 1, 1, 2])
    cfg = PostprocessConfig(score_threshold=0.0, soft_nms="linear", nms_iou=0.5, soft_nms_min_score=0.0)
    out = postprocess(det, cfg)
    np.testing.assert_allclose(out.scores, [0.9, 0.7, 0.6, 0.8 * 0.1], rtol=1e-6)
    np.testing.assert_array_equal(out.labels, [1, 1, 2, 1])
    assert policy_record(cfg)["soft_nms"] == "linear"
