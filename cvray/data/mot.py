"""MOTChallenge sequence layout: ``seqinfo.ini`` + ``img1/`` frames (pure core, no Ray)."""
from __future__ import annotations

import configparser
from dataclasses import dataclass

from cvray.io import storage

__all__ = ["SeqInfo", "frame_records", "read_seqinfo"]


@dataclass(frozen=True)
class SeqInfo:
    name: str
    im_dir: str
    frame_rate: float
    seq_length: int
    width: int
    height: int
    im_ext: str


def read_seqinfo(uri: str) -> SeqInfo:
    """Parse a MOTChallenge ``seqinfo.ini``; a missing or bad key is named in the error."""
    cp = configparser.ConfigParser()
    try:
        cp.read_string(storage.read_bytes(uri).decode())
        s = cp["Sequence"]
        return SeqInfo(name=s["name"], im_dir=s.get("imDir", "img1"), frame_rate=float(s["frameRate"]),
                       seq_length=int(s["seqLength"]), width=int(s["imWidth"]), height=int(s["imHeight"]),
                       im_ext=s.get("imExt", ".jpg"))
    except KeyError as exc:
        raise ValueError(f"{uri}: seqinfo.ini lacks key {exc}") from exc
    except (ValueError, configparser.Error) as exc:
        raise ValueError(f"{uri}: invalid seqinfo.ini ({exc})") from exc


def frame_records(seq_uri: str) -> tuple[SeqInfo, list[dict]]:
    """Ordered per-frame records (frame index from 1, timestamp in seconds) of a sequence folder."""
    info = read_seqinfo(storage.join(seq_uri, "seqinfo.ini"))
    recs = []
    for frame in range(1, info.seq_length + 1):
        recs.append({
            "sequence": info.name,
            "frame": frame,
            "timestamp": (frame - 1) / info.frame_rate,
            "uri": storage.join(seq_uri, info.im_dir, f"{frame:06d}{info.im_ext}"),
        })
    return info, recs
