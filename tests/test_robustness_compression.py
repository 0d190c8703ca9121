"""cvray.robustness.compression: H.264 / H.265 CRF tiers through PyAV, in memory.

The synthetic sequence is natural-ish on purpose (luma texture, smooth chroma, two moving flat
shapes with edges): per-channel noise would make the 4:2:0 chroma loss dominate everything.
The CRF-0 baseline is checked against an rgb24 -> yuv420p -> rgb24 conversion written here with
PyAV's VideoFrame.reformat, independently of the module.
"""
from __future__ import annotations

import io
import math
import subprocess
import sys

import av
import numpy as np
import pytest

from cvray.robustness import compression as C

CODECS = ("h264", "h265")


def sequence(t: int = 12, h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a textured background panning right, a red box and a green disc moving."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    texture = (18 * np.sin(xx / 3.1) * np.cos(yy / 4.3) + 10 * np.sin((xx + 2 * yy) / 1.7)
               + rng.normal(0, 4, (h, w)))
    frames = []
    for k in range(t):
        x = xx - 2 * k
        base = np.stack([90 + 60 * x / w, 110 + 50 * yy / h, 150 - 40 * x / w], axis=-1)
        img = base + np.roll(texture, 2 * k, axis=1)[..., None]
        img[h // 4:h // 4 + 16, 8 + 4 * k:30 + 4 * k] = (220, 40, 40)
        img[np.hypot(yy - (h - 20 - k), xx - (w - 25 - 2 * k)) < 9] = (40, 190, 70)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


SEQ = sequence()


def colour_roundtrip(seq: np.ndarray) -> np.ndarray:
    """rgb24 -> yuv420p -> rgb24 with swscale and no codec (even sizes only)."""
    return np.stack([av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
                     .to_ndarray(format="rgb24") for f in seq])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    return float(np.mean(10 * np.log10(255.0 ** 2 / mse)))


# ----------------------------------------------------------------------------- round trip

@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("shape", [(12, 64, 96), (10, 63, 97)])
def test_round_trip_keeps_count_shape_dtype(codec, shape):
    seq = sequence(*shape)
    res = C.compress_sequence(seq, C.Tier(codec, 23))
    assert res.frames.shape == seq.shape and res.frames.dtype == np.uint8
    assert res.tier == C.Tier(codec, 23) and res.fps == 25 and res.pix_fmt == "yuv420p"
    assert 25.0 < res.psnr_db < 60.0
    assert res.encode_s > 0 and res.decode_s > 0


def test_list_of_frames_equals_array_input():
    a = C.compress_sequence(SEQ, C.Tier("h264", 28))
    b = C.compress_sequence(list(SEQ), C.Tier("h264", 28))
    assert a.encoded == b.encoded and np.array_equal(a.frames, b.frames)


@pytest.mark.parametrize("codec", CODECS)
def test_same_input_same_bytes(codec):
    # several tries: x264's SIMD path without cpu-independent=1 differed in ~1 encode of 6
    a = C.compress_sequence(SEQ, C.Tier(codec, 28))
    for k in range(12):
        b = C.compress_sequence(SEQ.copy() if k % 2 else SEQ, C.Tier(codec, 28))
        assert b.encoded == a.encoded, k
        assert np.array_equal(a.frames, b.frames)
    # and the stream really depends on the frames
    c = C.compress_sequence(sequence(seed=1), C.Tier(codec, 28))
    assert c.encoded != a.encoded


def test_encoded_is_a_plain_mp4_of_the_codec():
    for codec, name in (("h264", "h264"), ("h265", "hevc")):
        res = C.compress_sequence(SEQ, C.Tier(codec, 28))
        with av.open(io.BytesIO(res.encoded)) as container:
            assert container.format.name.startswith("mov,mp4")
            stream = container.streams.video[0]
            assert stream.codec_context.name == name
            assert (stream.codec_context.width, stream.codec_context.height) == (96, 64)
            sizes = [p.size for p in container.demux(stream) if p.size]
        assert len(sizes) == len(SEQ) and sum(sizes) == res.packet_bytes


# ----------------------------------------------------------------------------- rate / quality

@pytest.mark.parametrize("codec", CODECS)
def test_higher_crf_lower_bitrate_and_psnr(codec):
    res = [C.compress_sequence(SEQ, C.Tier(codec, crf)) for crf in (18, 28, 40)]
    rates = [r.bitrate_kbps for r in res]
    psnrs = [r.psnr_db for r in res]
    assert rates[0] > rates[1] > rates[2] > 0, rates
    assert psnrs[0] > psnrs[1] > psnrs[2], psnrs


@pytest.mark.parametrize("codec", CODECS)
def test_bitrate_and_bpp_follow_from_stream_bytes(codec):
    fps = 30
    res = C.compress_sequence(SEQ, C.Tier(codec, 28), fps=fps)
    t, h, w, _ = SEQ.shape
    assert res.bitrate_kbps == 8 * res.stream_bytes / (t / fps) / 1000
    assert res.bits_per_pixel == 8 * res.stream_bytes / (t * h * w)
    assert res.psnr_db == psnr(res.frames, SEQ)
    assert 0 < res.stream_bytes <= res.packet_bytes


def test_x264_settings_sei_is_not_counted_as_picture_bytes():
    h264 = C.compress_sequence(SEQ, C.Tier("h264", 28))
    h265 = C.compress_sequence(SEQ, C.Tier("h265", 28))
    # x264's settings string ("x264 - core ... options: ...") rides in the first packet
    assert b"x264 - core" in h264.encoded
    assert h264.packet_bytes - h264.stream_bytes > 200
    assert h265.packet_bytes == h265.stream_bytes  # x265's SEI lives in the MP4 header


# ----------------------------------------------------------------------------- CRF-0 baseline

@pytest.mark.parametrize("codec", CODECS)
def test_baseline_is_lossless_in_yuv(codec):
    base = C.compress_sequence(SEQ, C.baseline_tier(codec))
    assert base.tier == C.Tier(codec, 0) and base.tier.is_baseline
    pure = colour_roundtrip(SEQ)
    assert np.array_equal(base.frames, pure)  # the codec added nothing
    assert abs(base.psnr_db - psnr(pure, SEQ)) < 0.05
    assert np.array_equal(C.yuv_roundtrip(SEQ), pure)


def test_x265_crf0_alone_would_not_be_lossless():
    """Why the baseline adds lossless=1 for x265: a plain CRF-0 x265 encode changes the pixels."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx265", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"crf": "0", "x265-params": "log-level=error"}
        for i, f in enumerate(SEQ):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with av.open(io.BytesIO(buf.getvalue())) as container:
        plain = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    base = C.compress_sequence(SEQ, C.baseline_tier("h265"))
    assert plain.shape == base.frames.shape
    assert not np.array_equal(plain, base.frames)
    assert psnr(plain, SEQ) < base.psnr_db


def test_baseline_odd_size_matches_padded_conversion():
    seq = sequence(6, 63, 97)
    padded = np.pad(seq, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")
    expected = colour_roundtrip(padded)[:, :63, :97]
    for codec in CODECS:
        assert np.array_equal(C.compress_sequence(seq, C.baseline_tier(codec)).frames, expected)


def test_compress_tiers_reports_psnr_vs_input_and_baseline():
    tiers = C.parse_tiers("h264:18,28,40;h265:0,28")
    res = C.compress_tiers(SEQ, tiers)
    assert [r.tier for r in res] == tiers
    by = {r.tier.name: r for r in res}
    base264 = C.compress_sequence(SEQ, C.baseline_tier("h264"))
    lossy = [r for r in res if not r.tier.is_baseline]
    for r in lossy:
        assert r.psnr_db < base264.psnr_db
        assert math.isfinite(r.psnr_vs_baseline) and r.psnr_vs_baseline > 20
        assert r.psnr_vs_baseline == psnr(r.frames, base264.frames)  # both baselines are equal
    assert by["h265_crf0"].psnr_vs_baseline == math.inf
    assert by["h265_crf0"].psnr_db == base264.psnr_db
    vs_base = [by[f"h264_crf{crf}"].psnr_vs_baseline for crf in (18, 28, 40)]
    assert vs_base[0] > vs_base[1] > vs_base[2]
    row = by["h264_crf28"].row()
    assert row["tier"] == "h264_crf28" and row["psnr_vs_baseline"] == by["h264_crf28"].psnr_vs_baseline
    assert "frames" not in row and "encoded" not in row


def test_yuv444_baseline_shows_the_chroma_subsampling_loss():
    b420 = C.compress_sequence(SEQ, C.baseline_tier("h264"))
    b444 = C.compress_sequence(SEQ, C.baseline_tier("h264"), pix_fmt="yuv444p")
    assert b444.psnr_db > b420.psnr_db + 3
    assert np.array_equal(b444.frames, C.yuv_roundtrip(SEQ, "yuv444p"))
    h444 = C.compress_sequence(SEQ, C.baseline_tier("h265"), pix_fmt="yuv444p")
    assert np.array_equal(h444.frames, b444.frames)


# ----------------------------------------------------------------------------- grammar / errors

def test_parse_tiers_grammar():
    expected = [C.Tier("h264", 18), C.Tier("h264", 23), C.Tier("h264", 28), C.Tier("h265", 28)]
    assert C.parse_tiers("h264:18,23,28;h265:28") == expected
    assert C.parse_tiers("h264:18,23,28,h265:28") == expected
    assert C.parse_tiers(" H264:18, 23 ,28 ; hevc:28 ") == expected
    assert C.parse_tiers("h264:18,18,x264:18") == [C.Tier("h264", 18)]
    assert C.parse_tiers("h265:0") == [C.baseline_tier("h265")]
    assert [t.name for t in C.parse_tiers("avc:35,x265:51")] == ["h264_crf35", "h265_crf51"]


@pytest.mark.parametrize("spec, fragment", [
    ("", "empty compression spec"),
    ("   ", "empty compression spec"),
    ("vp9:30", "'vp9:30'"),
    ("h264:18,vp9:30", "unknown codec 'vp9'"),
    ("h264:52", "crf 52 out of range 0..51"),
    ("h264:18,-1", "tier '-1'"),
    ("h264:18,,23", "empty tier"),
    ("h264:18;", "empty tier"),
    ("18,h264:23", "tier '18' has no codec"),
    ("h264:abc", "crf 'abc' is not an integer"),
    ("h264:", "tier 'h264:'"),
    ("h264:2.5", "'2.5' is not an integer"),
])
def test_parse_tiers_errors_name_the_bad_token(spec, fragment):
    with pytest.raises(ValueError) as err:
        C.parse_tiers(spec)
    assert fragment in str(err.value)


def test_tier_validation():
    assert C.Tier("HEVC", 20) == C.Tier("h265", 20) and C.Tier("x264", 20).name == "h264_crf20"
    with pytest.raises(ValueError, match="unknown codec 'mpeg2'"):
        C.Tier("mpeg2", 20)
    with pytest.raises(ValueError, match="crf 60 out of range"):
        C.Tier("h264", 60)
    with pytest.raises(TypeError, match="crf must be an int"):
        C.Tier("h264", 20.0)
    with pytest.raises(TypeError, match="crf must be an int"):
        C.Tier("h264", True)


def test_compress_sequence_rejects_bad_input():
    tier = C.Tier("h264", 28)
    with pytest.raises(TypeError, match="uint8"):
        C.compress_sequence(SEQ.astype(np.float32), tier)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\).*\(64, 96, 3\)"):
        C.compress_sequence(SEQ[0], tier)
    with pytest.raises(ValueError, match="non-empty"):
        C.compress_sequence(SEQ[:0], tier)
    with pytest.raises(ValueError, match="frames differ in shape"):
        C.compress_sequence([SEQ[0], SEQ[0, :32]], tier)
    with pytest.raises(ValueError, match="fps must be a positive int, got 0"):
        C.compress_sequence(SEQ, tier, fps=0)
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        C.compress_sequence(SEQ, tier, preset="quick")
    with pytest.raises(ValueError, match="unsupported pix_fmt 'nv12'"):
        C.compress_sequence(SEQ, tier, pix_fmt="nv12")
    with pytest.raises(ValueError, match=r"h265 needs frames at least 16 px on each side, got 96x14"):
        C.compress_sequence(SEQ[:, :14], C.Tier("h265", 28))
    assert C.compress_sequence(SEQ[:2, :15, :15], C.Tier("h265", 28)).frames.shape == (2, 15, 15, 3)
    assert C.compress_sequence(SEQ[:2, :3, :5], C.Tier("h264", 28)).frames.shape == (2, 3, 5, 3)
    with pytest.raises(TypeError, match="tier must be a Tier"):
        C.compress_sequence(SEQ, "h264:28")


def test_psnr_db_shapes_and_identity():
    assert C.psnr_db(SEQ, SEQ) == math.inf
    with pytest.raises(ValueError, match="different shapes"):
        C.psnr_db(SEQ, SEQ[:2])


def test_module_does_not_import_ray():
    code = ("import sys, cvray.robustness.compression; "
            "bad = [m for m in ('ray', 'torch') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
