"""IoU and boundary F-score on hand-made masks, with the values worked out by hand."""

import pytest
import torch

from skiplab.train.masks import boundary, boundary_f_per_image, iou_per_image, mask_scores


def square(top: int, left: int, side: int = 4, size: int = 10) -> torch.Tensor:
    m = torch.zeros(size, size, dtype=torch.bool)
    m[top : top + side, left : left + side] = True
    return m


def test_identical_masks_score_one():
    m = square(2, 2)
    assert mask_scores(m, m) == {"iou": 1.0, "boundary_f": 1.0}


def test_boundary_of_a_square_is_its_ring_and_a_one_pixel_line_is_all_boundary():
    b = boundary(square(2, 2))[0]
    assert int(b.sum()) == 12 and not b[3, 3] and not b[4, 4] and b[2, 2] and b[5, 3]
    line = torch.zeros(10, 10, dtype=torch.bool)
    line[5, 1:9] = True
    assert torch.equal(boundary(line)[0], line)
    # the image edge is not a boundary: a mask covering the whole image has none
    assert int(boundary(torch.ones(6, 6, dtype=torch.bool)).sum()) == 0


def test_a_square_shifted_by_one_column():
    truth, pred = square(2, 2), square(2, 3)
    # intersection 4 rows x 3 columns = 12, union 4 x 5 = 20
    assert float(iou_per_image(pred, truth)) == pytest.approx(0.6)
    # every boundary pixel is within one pixel of the other boundary
    assert float(boundary_f_per_image(pred, truth, tolerance=1)) == pytest.approx(1.0)
    # exactly: rows 2 and 5, columns 3..5 are on both rings (6 of 12 each way): P = R = F = 0.5
    assert float(boundary_f_per_image(pred, truth, tolerance=0)) == pytest.approx(0.5)


def test_a_thin_line_drawn_as_a_thick_band():
    truth = torch.zeros(10, 10, dtype=torch.bool)
    truth[5, 1:9] = True
    band = torch.zeros(10, 10, dtype=torch.bool)
    band[4:7, 1:9] = True
    assert float(iou_per_image(band, truth)) == pytest.approx(8 / 24)
    # the band's boundary: rows 4 and 6 (16) and its two ends (5,1), (5,8); all within 1 px of the line
    assert int(boundary(band).sum()) == 18
    assert float(boundary_f_per_image(band, truth, tolerance=1)) == pytest.approx(1.0)
    # at tolerance 0 only the two ends coincide: P = 2/18, R = 2/8, F = 2PR/(P+R) = 2*(1/9)*(1/4)/(13/36) = 2/13
    assert float(boundary_f_per_image(band, truth, tolerance=0)) == pytest.approx(2 / 13)


def test_a_dropped_thin_line_scores_zero_and_two_empty_masks_agree():
    line = torch.zeros(10, 10, dtype=torch.bool)
    line[2:8, 4] = True
    empty = torch.zeros(10, 10, dtype=torch.bool)
    assert float(iou_per_image(empty, line)) == 0.0 and float(boundary_f_per_image(empty, line)) == 0.0
    assert float(iou_per_image(line, empty)) == 0.0 and float(boundary_f_per_image(line, empty)) == 0.0
    assert float(iou_per_image(empty, empty)) == 1.0 and float(boundary_f_per_image(empty, empty)) == 1.0


def test_scores_are_per_image_means_and_take_any_batch_layout():
    truth = torch.stack([square(2, 2), square(2, 2)])
    pred = torch.stack([square(2, 2), square(2, 3)])
    assert mask_scores(pred, truth)["iou"] == pytest.approx((1.0 + 0.6) / 2)
    assert mask_scores(pred.unsqueeze(1).float(), truth.unsqueeze(1).to(torch.uint8))["iou"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="differ in shape"):
        mask_scores(pred, truth[:1])
    with pytest.raises(ValueError, match="tolerance"):
        boundary_f_per_image(pred, truth, tolerance=-1)
