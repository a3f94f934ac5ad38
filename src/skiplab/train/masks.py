"""How well a predicted mask matches the truth: intersection over union and the boundary F-score.

Both are computed per image and averaged over images, so a small shape
counts as much as a large one.

- IoU (Jaccard index): |P ∩ T| / |P ∪ T|; two empty masks agree perfectly (1).
- Boundary F-score (Martin, Fowlkes and Malik 2004; the F measure of the
  DAVIS benchmark, Perazzi et al. 2016): the boundary of a mask is its
  pixels with a 4-neighbour outside it (the image edge is not a boundary).
  Precision is the share of the predicted boundary within `tolerance`
  pixels (Chebyshev distance) of the true boundary, recall the share of the
  true boundary within `tolerance` of the predicted one, and F their
  harmonic mean. Two empty boundaries score 1, one empty boundary 0. A
  stroke one pixel wide is all boundary, so a prediction that blurs or drops
  thin parts loses here more than in IoU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BOUNDARY_TOLERANCE = 1  # pixels: a boundary one pixel off still counts, as in the DAVIS benchmark at 32 px


def _as_batch(mask: torch.Tensor) -> torch.Tensor:
    """(H, W), (N, H, W) or (N, 1, H, W) → bool (N, H, W)."""
    if mask.dim() == 4:
        if mask.shape[1] != 1:
            raise ValueError(f"a batch of masks has one channel; got shape {tuple(mask.shape)}")
        mask = mask[:, 0]
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if mask.dim() != 3:
        raise ValueError(f"masks must be (H, W), (N, H, W) or (N, 1, H, W); got shape {tuple(mask.shape)}")
    return mask.bool()


def _pair(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_batch(pred), _as_batch(truth)
    if p.shape != t.shape:
        raise ValueError(f"predicted and true masks differ in shape: {tuple(p.shape)} vs {tuple(t.shape)}")
    return p, t


def iou_per_image(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """|P ∩ T| / |P ∪ T| for each image (1 where both are empty)."""
    p, t = _pair(pred, truth)
    inter = (p & t).sum((1, 2)).double()
    union = (p | t).sum((1, 2)).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def boundary(mask: torch.Tensor) -> torch.Tensor:
    """The mask's pixels that have a 4-neighbour outside it (edges of the image replicate the mask)."""
    m = _as_batch(mask)
    padded = F.pad(m.unsqueeze(1).float(), (1, 1, 1, 1), mode="replicate")[:, 0].bool()
    inside = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    return m & ~inside


def _near(b: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Pixels within `tolerance` (Chebyshev distance) of a pixel of `b`."""
    if tolerance == 0:
        return b
    k = 2 * tolerance + 1
    return F.max_pool2d(b.unsqueeze(1).float(), k, stride=1, padding=tolerance)[:, 0].bool()


def boundary_f_per_image(pred: torch.Tensor, truth: torch.Tensor, tolerance: int = BOUNDARY_TOLERANCE) -> torch.Tensor:
    """The boundary F-score of each image (see the module's docstring)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be an integer >= 0 pixels; got {tolerance!r}")
    p, t = _pair(pred, truth)
    bp, bt = boundary(p), boundary(t)
    n_p, n_t = bp.sum((1, 2)).double(), bt.sum((1, 2)).double()
    precision = (bp & _near(bt, tolerance)).sum((1, 2)).double() / n_p.clamp(min=1)
    recall = (bt & _near(bp, tolerance)).sum((1, 2)).double() / n_t.clamp(min=1)
    f = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0)
    both_empty, one_empty = (n_p == 0) & (n_t == 0), (n_p == 0) ^ (n_t == 0)
    return torch.where(both_empty, torch.ones_like(f), torch.where(one_empty, torch.zeros_like(f), f))


def mask_scores(pred: torch.Tensor, truth: torch.Tensor, tolerance: int = BOUNDARY_TOLERANCE) -> dict[str, float]:
    """Mean IoU and mean boundary F-score over a batch of images."""
    return {
        "iou": float(iou_per_image(pred, truth).mean()),
        "boundary_f": float(boundary_f_per_image(pred, truth, tolerance).mean()),
    }
