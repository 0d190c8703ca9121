"""A small appearance CNN trained by cvray with a metric-learning (batch-hard triplet) loss.

Training data are crops of tracked ground truth: every ``(sequence, id)`` is one identity
(:func:`gt_crops`). PK batches (``batch_ids`` identities x ``batch_per_id`` crops) and the
batch-hard triplet loss of Hermans et al. 2017 on cosine distances; runs on CPU in seconds for
the synthetic data. Weights are saved as a plain state dict and loaded with
``torch.load(weights_only=True)`` (:func:`cvray.models.weights.read_state_dict`).
"""
from __future__ import annotations

import io
import logging

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cvray.track.appearance import crop_boxes
from cvray.track.config import AppearanceConfig

__all__ = ["CNNExtractor", "EmbeddingNet", "batch_hard_triplet_loss", "gt_crops", "load_cnn_extractor",
           "save_weights", "train_embedding_net"]

log = logging.getLogger(__name__)


class EmbeddingNet(nn.Module):
    """4 conv blocks (3->16->32->64->64) + global average pool + linear, unit-norm output."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        chans = (3, 16, 32, 64, 64)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return F.normalize(self.head(x), dim=1)


def _to_tensor(crops: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


class CNNExtractor:
    """Extractor wrapping an :class:`EmbeddingNet` (eval mode, no grad, CPU by default)."""

    def __init__(self, model: EmbeddingNet, crop_size: tuple[int, int] = (64, 32)) -> None:
        self.model = model.eval()
        self.crop_size = tuple(crop_size)
        self.dim = model.head.out_features

    @torch.no_grad()
    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if len(boxes) == 0:
            return np.zeros((0, self.dim), np.float32)
        crops = np.stack(crop_boxes(image, boxes, self.crop_size))
        return self.model(_to_tensor(crops)).numpy().astype(np.float32)


def batch_hard_triplet_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """For each anchor: hardest positive and hardest negative by cosine distance (Hermans 2017)."""
    dist = 1.0 - emb @ emb.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    hardest_pos = dist.masked_fill(~same | eye, -1.0).max(dim=1).values
    hardest_neg = dist.masked_fill(same, 4.0).min(dim=1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def gt_crops(image_loader, gt_rows: np.ndarray, crop_size: tuple[int, int], min_visibility: float,
             label_offset: int = 0, max_per_id: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Crops of visible gt boxes: ``image_loader(frame) -> RGB``; gt rows in MOT format
    (visibility in column 9). Returns ``(crops uint8 (N, h, w, 3), labels (N,))``; labels are
    ``label_offset + id`` so several sequences can be pooled."""
    keep = gt_rows[:, 8] >= min_visibility if gt_rows.shape[1] > 8 else np.ones(len(gt_rows), bool)
    rows = gt_rows[keep]
    crops, labels = [], []
    per_id: dict[int, int] = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        fr = rows[rows[:, 0] == frame]
        fr = fr[[per_id.get(int(i), 0) < max_per_id for i in fr[:, 1]]]
        if not len(fr):
            continue
        image = image_loader(int(frame))
        # MOT boxes are 1-based: pixel column c is written c + 1
        boxes = np.column_stack([fr[:, 2] - 1, fr[:, 3] - 1, fr[:, 2] - 1 + fr[:, 4], fr[:, 3] - 1 + fr[:, 5]])
        crops += crop_boxes(image, boxes, crop_size)
        for i in fr[:, 1].astype(int):
            per_id[i] = per_id.get(i, 0) + 1
            labels.append(label_offset + i)
    if not crops:
        return np.zeros((0, *crop_size, 3), np.uint8), np.zeros(0, np.int64)
    return np.stack(crops), np.asarray(labels, np.int64)


def train_embedding_net(crops: np.ndarray, labels: np.ndarray, cfg: AppearanceConfig | None = None,
                        *, seed: int = 0) -> tuple[EmbeddingNet, list[float]]:
    """Train an :class:`EmbeddingNet` on ``crops`` (N, h, w, 3) uint8 with identity ``labels``.

    Returns the model (eval mode) and the loss per step. Deterministic for a given seed on CPU.
    """
    cfg = cfg or AppearanceConfig()
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = EmbeddingNet(cfg.embedding_dim)
    ids = np.unique(labels)
    ids = np.array([i for i in ids if (labels == i).sum() >= 2])
    if len(ids) < 2:
        raise ValueError(f"need at least 2 identities with 2 crops each, got {len(ids)}")
    by_id = {i: np.nonzero(labels == i)[0] for i in ids}
    x_all = _to_tensor(crops)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train_lr)
    losses = []
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.train_threads)  # small convs: extra threads only contend; restored below
    try:
        _train_steps(model, opt, x_all, labels, ids, by_id, cfg, rng, gen, losses)
    finally:
        torch.set_num_threads(threads)
    return model.eval(), losses


def _train_steps(model, opt, x_all, labels, ids, by_id, cfg, rng, gen, losses) -> None:
    for _step in range(cfg.train_steps):
        chosen = rng.choice(ids, size=min(cfg.batch_ids, len(ids)), replace=False)
        idx = np.concatenate([rng.choice(by_id[i], size=cfg.batch_per_id, replace=len(by_id[i]) < cfg.batch_per_id)
                              for i in chosen])
        x = x_all[idx]
        if torch.rand(1, generator=gen).item() < 0.5:  # horizontal flip augmentation
            x = x.flip(3)
        loss = batch_hard_triplet_loss(model(x), torch.from_numpy(labels[idx]), cfg.triplet_margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))


def save_weights(model: EmbeddingNet) -> bytes:
    """Serialise the state dict (write it with :func:`cvray.io.storage.write_bytes`)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def load_cnn_extractor(uri: str, cfg: AppearanceConfig | None = None) -> CNNExtractor:
    """User or cvray-trained weights by path/URI, loaded with ``weights_only=True``."""
    from cvray.models.weights import read_state_dict

    cfg = cfg or AppearanceConfig()
    state = read_state_dict(uri)
    dim = state["head.weight"].shape[0] if "head.weight" in state else cfg.embedding_dim
    model = EmbeddingNet(dim)
    model.load_state_dict(state, strict=True)
    return CNNExtractor(model, cfg.crop_size)
