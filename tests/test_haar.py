import math

import pytest
import torch

from napari_geoseg.nn import haar_coarsen, haar_refine


@pytest.mark.parametrize("dim", [2, 3])
def test_round_trip_and_norm_in_float64(dim):
    x = torch.randn(2, 3, *([8] * dim), dtype=torch.float64)
    y = haar_coarsen(x)
    assert y.shape == (2, 3 * 2**dim, *([4] * dim))
    assert (haar_refine(y) - x).abs().max() <= 1e-12
    assert abs(y.norm() - x.norm()) / x.norm() <= 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_adjoint_is_inverse(dim):
    x = torch.randn(1, 2, *([6] * dim), dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 2 * 2**dim, *([3] * dim), dtype=torch.float64)
    # <W x, g> = <x, W^T g> and W^T = W^-1 = haar_refine.
    (vjp,) = torch.autograd.grad(haar_coarsen(x), x, g)
    assert (vjp - haar_refine(g)).abs().max() <= 1e-12
    assert abs((haar_coarsen(x) * g).sum() - (x * haar_refine(g)).sum()) <= 1e-12
    z = torch.randn(1, 2 * 2**dim, *([3] * dim), dtype=torch.float64)
    assert (haar_coarsen(haar_refine(z)) - z).abs().max() <= 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_low_pass_band_comes_first(dim):
    c = 3
    x = torch.randn(1, c, *([4] * dim), dtype=torch.float64)
    blocks = x.reshape(1, c, *[v for _ in range(dim) for v in (2, 2)])
    average = blocks.mean(dim=tuple(3 + 2 * k for k in range(dim)))
    expected = average * math.sqrt(2) ** dim  # 2*sqrt(2) times the block mean in 3D
    assert (haar_coarsen(x)[:, :c] - expected).abs().max() <= 1e-12


def test_subband_order_last_axis_is_least_significant():
    # A signal alternating along the last axis only lives in subband 1 = high-pass there.
    c = 2
    signal = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(4)
    x = signal.expand(1, c, 8, 8, 8).clone()
    y = haar_coarsen(x)
    energy = y.pow(2).reshape(1, 8, c, -1).sum((0, 2, 3))
    assert energy.argmax() == 1
    assert energy[1] == pytest.approx(x.pow(2).sum().item())
    # ... and along the first spatial axis, the most significant bit: subband 4.
    y = haar_coarsen(x.permute(0, 1, 4, 2, 3))
    assert y.pow(2).reshape(1, 8, c, -1).sum((0, 2, 3)).argmax() == 4


def test_clear_errors():
    with pytest.raises(ValueError, match="even"):
        haar_coarsen(torch.zeros(1, 1, 4, 5, 4))
    with pytest.raises(ValueError, match="divisible by 8"):
        haar_refine(torch.zeros(1, 4, 2, 2, 2))
    with pytest.raises(ValueError, match="spatial axes"):
        haar_coarsen(torch.zeros(4, 4))


@pytest.mark.parametrize("shape", [(1, 4, 8, 8, 8), (2, 3, 8, 6, 4)])
def test_channels_last_path_matches_the_generic_one(shape):
    # Channels-last 3D tensors (the network's states on CPUs) take a contraction path:
    # same numbers, and the result stays channels-last.
    x = torch.randn(shape, dtype=torch.float64)
    fast = x.contiguous(memory_format=torch.channels_last_3d)
    assert not fast.is_contiguous()
    coarse = haar_coarsen(fast)
    assert coarse.is_contiguous(memory_format=torch.channels_last_3d)
    assert (coarse - haar_coarsen(x)).abs().max() <= 1e-12
    fine = haar_refine(coarse)
    assert fine.is_contiguous(memory_format=torch.channels_last_3d)
    assert (fine - haar_refine(haar_coarsen(x))).abs().max() <= 1e-12
    assert (fine - x).abs().max() <= 1e-12
