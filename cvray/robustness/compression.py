"""Video compression tiers for sequences: H.264 (libx264) and H.265 (libx265) by CRF via PyAV.

A tier is ``(codec, crf)``. :func:`compress_sequence` encodes a whole RGB sequence into an MP4
held in memory (``io.BytesIO``; MP4 is the container that is byte-for-byte reproducible here --
Matroska writes a random segment UID), decodes it back from memory and records what it cost:
the codec bitstream's size, the bitrate achieved and the PSNR against the input.

Why a CRF-0 baseline: even a perfect codec sees the frames only after RGB -> YUV 4:2:0, which
loses chroma resolution and rounds. :func:`baseline_tier` is CRF 0, which here means *lossless in
YUV* for both codecs (x264's CRF 0 at 8 bit is already qp 0 lossless; x265's CRF 0 is not, so
``lossless=1`` is added), so its loss against the RGB input is the colour conversion alone -- the
same pixels as :func:`yuv_roundtrip`. :func:`compress_tiers` reports every tier's PSNR against
both the input and that baseline, so a detector's drop can be split into "4:2:0" and "codec".

Determinism: one encoder thread, no asynchronous lookahead and, for x264, ``cpu-independent=1``
(see ``_X264_PARAMS``: without it ~1 encode in 6 differed on AVX-512), plus an MP4 with no
creation time, so the same frames and tier give identical bytes. x265 prints a
banner to stderr through its own logger, not libav's; ``log-level=error`` silences it without
touching PyAV's global logging. Odd widths/heights (4:2:0 needs even ones) are padded by edge
replication before the colour conversion and cropped back after decoding.
"""
from __future__ import annotations

import dataclasses
import io
import re
import time
from dataclasses import dataclass
from typing import Sequence

import av
import numpy as np

__all__ = ["CODECS", "CRF_RANGE", "PRESETS", "PIX_FMTS", "Tier", "CompressionResult", "parse_tiers",
           "baseline_tier", "compress_sequence", "compress_tiers", "yuv_roundtrip", "psnr_db"]

CODECS: dict[str, str] = {"h264": "libx264", "h265": "libx265"}
_ALIASES: dict[str, str] = {"avc": "h264", "x264": "h264", "hevc": "h265", "x265": "h265"}
CRF_RANGE: tuple[int, int] = (0, 51)  # 8-bit range of both encoders
PRESETS: tuple[str, ...] = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                            "slow", "slower", "veryslow", "placebo")
# pix_fmt -> (horizontal, vertical) chroma subsampling factor: the padding multiple.
PIX_FMTS: dict[str, tuple[int, int]] = {"yuv420p": (2, 2), "yuv422p": (2, 1), "yuv444p": (1, 1)}
# x264: one thread, no asynchronous lookahead, and cpu-independent=1 (the C code for the few SIMD
# kernels that are not bit-exact with it). Without the latter, on an AVX-512 host, about 1 encode
# in 6 of the same frames in one process gave different bytes (0 in ~550 with it; restricting
# x264 to AVX2 also cured it). It is x264's switch for CPU-independent bytes: here they equal
# a no-asm encode's. x265 with no thread pool runs in-line and was stable as is.
_X264_PARAMS = "threads=1:lookahead-threads=1:sync-lookahead=0:cpu-independent=1"
_X265_PARAMS = "log-level=error:pools=none:frame-threads=1"
_MIN_SIDE: dict[str, int] = {"h264": 1, "h265": 16}  # x265 refuses to open below 16 px (padded)
_SEI_TYPES: dict[str, tuple[int, ...]] = {"h264": (6,), "h265": (39, 40)}  # NAL unit types of SEI


def _codec_name(codec: str) -> str:
    key = str(codec).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; valid: {', '.join(CODECS)} "
                         f"(aliases {', '.join(_ALIASES)})")
    return key


@dataclass(frozen=True, order=True)
class Tier:
    """One compression setting. ``codec`` is ``"h264"`` or ``"h265"`` (aliases avc/x264/hevc/x265
    are normalised); ``crf`` 0..51, 0 meaning lossless in YUV (see the module docstring)."""

    codec: str
    crf: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "codec", _codec_name(self.codec))
        if isinstance(self.crf, bool) or not isinstance(self.crf, (int, np.integer)):
            raise TypeError(f"crf must be an int, got {self.crf!r}")
        if not CRF_RANGE[0] <= int(self.crf) <= CRF_RANGE[1]:
            raise ValueError(f"crf {self.crf} out of range {CRF_RANGE[0]}..{CRF_RANGE[1]}")
        object.__setattr__(self, "crf", int(self.crf))

    @property
    def name(self) -> str:
        """Stable id for tables and file names, e.g. ``"h264_crf23"``."""
        return f"{self.codec}_crf{self.crf}"

    @property
    def is_baseline(self) -> bool:
        """CRF 0: encoded losslessly in YUV (x265 gets ``lossless=1``)."""
        return self.crf == 0


def baseline_tier(codec: str) -> Tier:
    """The CRF-0 tier of ``codec``: lossless in YUV, so it measures the colour conversion alone."""
    return Tier(codec, 0)


def parse_tiers(spec: str) -> list[Tier]:
    """Parse the ``--compression`` grammar into ordered, de-duplicated tiers.

    ``CODEC:CRF[,CRF...]`` groups, separated by ``;`` or simply by a comma before the next
    ``CODEC:`` (shell-friendly, no quoting): ``"h264:18,23,28;h265:28"`` and
    ``"h264:18,23,28,h265:28"`` are the same four tiers. A bare CRF belongs to the codec named
    last. ValueError names the bad token (empty, unknown codec, non-integer or out-of-range CRF).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty compression spec {spec!r}; expected e.g. 'h264:18,23,28;h265:28'")
    out: list[Tier] = []
    codec: str | None = None
    for token in spec.replace(";", ",").split(","):
        token = token.strip()
        if not token:
            raise ValueError(f"empty tier in compression spec {spec!r}")
        if ":" in token:
            head, _, crf_text = token.partition(":")
            try:
                codec = _codec_name(head)
            except ValueError as exc:
                raise ValueError(f"tier {token!r}: {exc}") from None
        elif codec is None:
            raise ValueError(f"tier {token!r} has no codec; write e.g. 'h264:{token}'")
        else:
            crf_text = token
        crf_text = crf_text.strip()
        if not re.fullmatch(r"-?[0-9]+", crf_text):
            raise ValueError(f"tier {token!r}: crf {crf_text!r} is not an integer")
        try:
            tier = Tier(codec, int(crf_text))
        except ValueError as exc:
            raise ValueError(f"tier {token!r}: {exc}") from None
        if tier not in out:
            out.append(tier)
    return out


@dataclass(frozen=True, eq=False)
class CompressionResult:
    """One tier applied to one sequence.

    ``packet_bytes`` is the sum of the MP4's video packet sizes; ``stream_bytes`` the same without
    SEI NAL units (encoder metadata: x264's settings string; x265 keeps its own in the MP4 header)
    -- the pictures themselves. ``bitrate_kbps = 8 * stream_bytes / (T / fps) / 1000`` and
    ``bits_per_pixel`` (per input pixel) use it, so neither container nor metadata inflates small
    sequences or favours one codec. ``psnr_db`` is the mean
    per-frame PSNR against the input (inf for an identical frame); ``psnr_vs_baseline`` the same
    against the codec's CRF-0 decode, set by :func:`compress_tiers` / :meth:`with_baseline`.
    """

    tier: Tier
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, decoded
    encoded: bytes  # the MP4 file
    stream_bytes: int
    packet_bytes: int
    bitrate_kbps: float
    bits_per_pixel: float
    psnr_db: float
    encode_s: float  # encoder + MP4 muxer (the RGB -> YUV conversion before them not counted)
    decode_s: float  # demuxer + decoder + YUV -> RGB
    fps: int
    pix_fmt: str
    psnr_vs_baseline: float | None = None

    def with_baseline(self, baseline: CompressionResult) -> CompressionResult:
        """A copy with ``psnr_vs_baseline`` measured against ``baseline``'s decoded frames."""
        return dataclasses.replace(self, psnr_vs_baseline=psnr_db(self.frames, baseline.frames))

    def row(self) -> dict[str, object]:
        """Flat scalars for a results table (no frames, no bytes)."""
        return {"tier": self.tier.name, "codec": self.tier.codec, "crf": self.tier.crf,
                "pix_fmt": self.pix_fmt, "fps": self.fps, "stream_bytes": self.stream_bytes,
                "packet_bytes": self.packet_bytes,
                "bitrate_kbps": self.bitrate_kbps, "bits_per_pixel": self.bits_per_pixel,
                "psnr_db": self.psnr_db, "psnr_vs_baseline": self.psnr_vs_baseline,
                "encode_s": self.encode_s, "decode_s": self.decode_s}


def _picture_bytes(packet: bytes, codec: str) -> int:
    """Bytes of ``packet`` (MP4: 4-byte length-prefixed NAL units) outside SEI NAL units.

    Why: x264 puts a ~0.7 kB settings string (an SEI) in the first packet while x265 puts its own
    in the MP4 header, which at test sizes would be a large, codec-dependent share of the bitrate.
    A packet that does not parse as length-prefixed NALs is counted whole."""
    total, i, n = 0, 0, len(packet)
    while i + 4 < n:
        size = int.from_bytes(packet[i:i + 4], "big")
        if size == 0 or i + 4 + size > n:
            return n
        head = packet[i + 4]
        nal_type = head & 0x1F if codec == "h264" else (head >> 1) & 0x3F
        if nal_type not in _SEI_TYPES[codec]:
            total += 4 + size
        i += 4 + size
    return total if i == n else n


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of the per-frame PSNR (peak 255) of two (T, H, W, C) uint8 sequences."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr of sequences with different shapes {a.shape} and {b.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = (diff.reshape(len(diff), -1) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        per_frame = 10.0 * np.log10(255.0 ** 2 / mse)
    return float(per_frame.mean())


def _as_sequence(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(frames, np.ndarray):
        seq = frames
    else:
        frames = list(frames)
        shapes = {np.shape(f) for f in frames}
        if len(shapes) > 1:
            raise ValueError(f"frames differ in shape: {sorted(shapes)}")
        seq = np.stack(frames) if frames else np.zeros((0,), np.uint8)
    if seq.ndim != 4 or seq.shape[-1] != 3 or seq.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty (T, H, W, 3) RGB sequence, got shape {seq.shape}")
    if seq.dtype != np.uint8:
        raise TypeError(f"frames must be uint8, got {seq.dtype}")
    return np.ascontiguousarray(seq)


def _to_yuv(seq: np.ndarray, pix_fmt: str) -> list[av.VideoFrame]:
    """RGB -> ``pix_fmt`` frames with swscale (the conversion every tier, and the baseline, sees),
    after padding H and W to the chroma subsampling multiple by edge replication."""
    if pix_fmt not in PIX_FMTS:
        raise ValueError(f"unsupported pix_fmt {pix_fmt!r}; valid: {', '.join(PIX_FMTS)}")
    sx, sy = PIX_FMTS[pix_fmt]
    _, h, w, _ = seq.shape
    pad = ((0, 0), (0, -h % sy), (0, -w % sx), (0, 0))
    if any(p[1] for p in pad):
        seq = np.pad(seq, pad, mode="edge")
    return [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt) for f in seq]


def yuv_roundtrip(frames: np.ndarray | Sequence[np.ndarray], pix_fmt: str = "yuv420p") -> np.ndarray:
    """RGB -> ``pix_fmt`` -> RGB with no codec: what a lossless encode returns (the CRF-0 floor)."""
    seq = _as_sequence(frames)
    _, h, w, _ = seq.shape
    return np.stack([f.to_ndarray(format="rgb24")[:h, :w] for f in _to_yuv(seq, pix_fmt)])


def compress_sequence(frames: np.ndarray | Sequence[np.ndarray], tier: Tier, *, fps: int = 25,
                      preset: str = "medium", pix_fmt: str = "yuv420p") -> CompressionResult:
    """Encode ``frames`` (T, H, W, 3 uint8 RGB) at ``tier`` into an in-memory MP4, decode it
    back and measure it. Raises ValueError/TypeError naming a bad argument, RuntimeError if the
    decoder returns a different number of frames than were encoded."""
    seq = _as_sequence(frames)
    if not isinstance(tier, Tier):
        raise TypeError(f"tier must be a Tier, got {tier!r}")
    if isinstance(fps, bool) or not isinstance(fps, (int, np.integer)) or fps <= 0:
        raise ValueError(f"fps must be a positive int, got {fps!r}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    n, h, w, _ = seq.shape
    yuv = _to_yuv(seq, pix_fmt)
    if min(yuv[0].width, yuv[0].height) < _MIN_SIDE[tier.codec]:
        raise ValueError(f"{tier.codec} needs frames at least {_MIN_SIDE[tier.codec]} px on each side, "
                         f"got {w}x{h} (W x H)")
    options = {"preset": preset, "crf": str(tier.crf)}
    if tier.codec == "h265":
        options["x265-params"] = _X265_PARAMS + (":lossless=1" if tier.is_baseline else "")
    else:
        options["x264-params"] = _X264_PARAMS

    t0 = time.perf_counter()
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream(CODECS[tier.codec], rate=int(fps))
        stream.width, stream.height = yuv[0].width, yuv[0].height
        stream.pix_fmt = pix_fmt
        stream.codec_context.thread_count = 1
        stream.options = options
        for i, frame in enumerate(yuv + [None]):
            if frame is not None:
                frame.pts = i
            container.mux(stream.encode(frame))
    encoded = buf.getvalue()
    t1 = time.perf_counter()
    stream_bytes = packet_bytes = 0
    decoded = []
    with av.open(io.BytesIO(encoded), mode="r", format="mp4") as container:
        for packet in container.demux(video=0):  # the flush packet at the end has size 0
            packet_bytes += packet.size
            stream_bytes += _picture_bytes(bytes(packet), tier.codec) if packet.size else 0
            decoded.extend(f.to_ndarray(format="rgb24")[:h, :w] for f in packet.decode())
    t2 = time.perf_counter()
    if len(decoded) != n:
        raise RuntimeError(f"{tier.name}: encoded {n} frames, decoded {len(decoded)}")
    out = np.stack(decoded)
    return CompressionResult(
        tier=tier, frames=out, encoded=encoded, stream_bytes=stream_bytes, packet_bytes=packet_bytes,
        bitrate_kbps=8 * stream_bytes / (n / fps) / 1000, bits_per_pixel=8 * stream_bytes / (n * h * w),
        psnr_db=psnr_db(out, seq), encode_s=t1 - t0, decode_s=t2 - t1, fps=int(fps), pix_fmt=pix_fmt)


def compress_tiers(frames: np.ndarray | Sequence[np.ndarray], tiers: Sequence[Tier], *,
                   fps: int = 25, preset: str = "medium",
                   pix_fmt: str = "yuv420p") -> list[CompressionResult]:
    """:func:`compress_sequence` for each tier (in order), each with ``psnr_vs_baseline`` against
    its codec's CRF-0 decode; the baseline is encoded once per codec (and reused if listed)."""
    seq = _as_sequence(frames)
    kw = {"fps": fps, "preset": preset, "pix_fmt": pix_fmt}
    baselines: dict[str, CompressionResult] = {}
    results = []
    for tier in tiers:
        if tier.codec not in baselines:
            baselines[tier.codec] = compress_sequence(seq, baseline_tier(tier.codec), **kw)
        base = baselines[tier.codec]
        res = base if tier.is_baseline else compress_sequence(seq, tier, **kw)
        results.append(res.with_baseline(base))
    return results
