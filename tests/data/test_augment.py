import torch

from skiplab.data import pad_crop_flip


def test_output_is_a_shifted_or_flipped_window_of_the_padded_input():
    x = torch.randn(16, 3, 32, 32)
    out = pad_crop_flip(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        windows = [
            padded[i, :, dy : dy + 32, dx : dx + 32].flip(-1) if f else padded[i, :, dy : dy + 32, dx : dx + 32]
            for dy in range(9)
            for dx in range(9)
            for f in (False, True)
        ]
        assert any(torch.equal(out[i], w) for w in windows)


def test_seeded_and_actually_random():
    x = torch.randn(64, 3, 8, 8)
    a = pad_crop_flip(x, generator=torch.Generator().manual_seed(1))
    b = pad_crop_flip(x, generator=torch.Generator().manual_seed(1))
    c = pad_crop_flip(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # about half the images are flipped, and most are shifted
    assert sum(not torch.equal(a[i], x[i]) for i in range(64)) > 40
