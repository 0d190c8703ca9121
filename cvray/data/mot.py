"""MOTChallenge sequence layout: ``seqinfo.ini`` + ``img1/`` frames (pure core, no Ray)."""
from __future__ import annotations

import configparser
import posixpath
from dataclasses import dataclass

from cvray.io import storage

__all__ = ["MOTFormatError", "SeqInfo", "frame_records", "read_seqinfo"]


class MOTFormatError(ValueError):
    """A MOTChallenge file is malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``."""

    name: str
    frame_rate: float = 30.0
    seq_length: int = 0
    width: int = 0
    height: int = 0
    im_dir: str = "img1"
    im_ext: str = ".jpg"


def read_seqinfo(uri: str) -> SeqInfo:
    """Parse ``seqinfo.ini``; missing optional keys take MOTChallenge defaults."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(storage.read_bytes(uri).decode("utf-8", errors="replace"), source=uri)
    except configparser.Error as exc:
        raise MOTFormatError(f"{uri}: not a valid ini file ({exc})") from None
    if "Sequence" not in parser:
        raise MOTFormatError(f"{uri}: missing [Sequence] section")
    s = parser["Sequence"]
    try:
        return SeqInfo(
            name=s.get("name", posixpath.basename(posixpath.dirname(uri.rstrip("/"))) or "seq"),
            frame_rate=float(s.get("frameRate", 30)),
            seq_length=int(s.get("seqLength", 0)),
            width=int(s.get("imWidth", 0)),
            height=int(s.get("imHeight", 0)),
            im_dir=s.get("imDir", "img1"),
            im_ext=s.get("imExt", ".jpg"),
        )
    except ValueError as exc:
        raise MOTFormatError(f"{uri}: bad value in [Sequence] ({exc})") from None


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
