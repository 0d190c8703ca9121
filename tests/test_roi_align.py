"""cvray's RoIAlign backward against torchvision's own op: same values, same gradients.

``cvray.models.roi_align`` keeps torchvision's forward and replaces only the (slow, scalar) CPU
backward, so a model trained with it is the model torchvision would have trained. The gradient is
checked in float64 on boxes that cross every edge case of the kernel: partly outside the feature
map, beyond the ``-1`` / ``H`` bounds, on the last row and column, thinner than one cell.
"""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align

from cvray.models.roi_align import FastMultiScaleRoIAlign, roi_align_fast


def _rois(n: int, batch: int, extent: float, gen: torch.Generator) -> torch.Tensor:
    b = torch.randint(0, batch, (n, 1), generator=gen).double()
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * (extent + 16) - 8
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 40 + 0.2
    return torch.cat([b, xy, xy + wh], 1)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("size,sr,scale", [((7, 7), 2, 0.25), ((14, 14), 2, 0.125), ((3, 5), 3, 1.0)])
def test_values_and_gradients_match_torchvision(aligned, size, sr, scale):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 11, 13, dtype=torch.float64, generator=gen, requires_grad=True)
    rois = _rois(60, 3, 13 / scale, gen)
    go = torch.randn(60, 5, *size, dtype=torch.float64, generator=gen)
    ref = roi_align(x, rois, size, scale, sr, aligned)
    (g_ref,) = torch.autograd.grad(ref, x, go)
    out = roi_align_fast(x, rois, size, scale, sr, aligned)
    (g_out,) = torch.autograd.grad(out, x, go)
    assert torch.equal(out, ref)
    assert g_ref.abs().sum() > 0
    torch.testing.assert_close(g_out, g_ref, rtol=0, atol=1e-12)


def test_no_rois_gives_zero_gradient():
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    out = roi_align_fast(x, torch.zeros(0, 5), (2, 2), 1.0, 2)
    out.sum().backward()
    assert out.shape == (0, 2, 2, 2) and torch.equal(x.grad, torch.zeros_like(x))


def test_multiscale_pooler_matches_torchvision():
    gen = torch.Generator().manual_seed(1)
    feats = {str(i): torch.randn(2, 4, 32 >> i, 32 >> i, generator=gen, dtype=torch.float64,
                                 requires_grad=True) for i in range(4)}
    boxes = [torch.tensor([[2.0, 3.0, 20.0, 30.0], [10.0, 10.0, 120.0, 100.0], [0.0, 0.0, 5.0, 6.0]],
                          dtype=torch.float64),
             torch.tensor([[40.0, 40.0, 90.0, 127.0]], dtype=torch.float64)]
    shapes = [(128, 128), (128, 128)]
    grads = []
    outs = []
    for cls in (MultiScaleRoIAlign, FastMultiScaleRoIAlign):
        pool = cls(["0", "1", "2", "3"], 7, 2, canonical_scale=56)
        out = pool(feats, boxes, shapes)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), list(feats.values())))
    assert torch.equal(outs[0], outs[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
    # the boxes really used several levels (canonical scale 56 at 128 px)
    assert sum(int(g.abs().sum() > 0) for g in grads[0]) >= 2
