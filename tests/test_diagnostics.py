import pytest
import torch

from napari_geoseg.nn import HyperbolicNet, diagnose, layer_step_norms, memory_estimate


def test_diagnostics_of_a_glorot_network():
    net = HyperbolicNet.symmetric(2, depths=(2, 2, 2), ranks=(4, 8, 8), dim=3)
    report = diagnose(net, torch.randn(1, 2, 16, 16, 16))
    assert report["invertibility_error"] < 1e-5
    assert 0.2 < report["energy_growth"] < 5
    assert 0.2 < report["stability"] < 5
    # The leapfrog stability bound h * ||K|| <= 2 holds comfortably at initialisation.
    assert len(report["step_norms"]) == 10 and report["max_step_norm"] < 2


def test_step_norm_matches_dense_operator_norm():
    net = HyperbolicNet(2, [(None, 3)], h=0.5, dim=2, dtype=torch.float64)
    layer = net.layers[0]
    size = 6
    # Build K as a dense matrix by applying it to the identity basis.
    basis = torch.eye(2 * size * size, dtype=torch.float64).reshape(-1, 2, size, size)
    k = torch.nn.functional.conv2d(basis, layer.weight, padding=1).reshape(basis.shape[0], -1).T
    exact = 0.5 * torch.linalg.matrix_norm(k, ord=2).item()
    assert layer_step_norms(net, size=size, iterations=200)[0] == pytest.approx(exact, rel=1e-3)


def test_memory_estimate_reproduces_paper_table_1_seismic():
    net = HyperbolicNet.symmetric(12, (2, 3, 3, 10), (8, 16, 32, 32), up_depths=(3, 3, 6),
                                  device="meta")
    est = memory_estimate(net, (1, 12, 248, 248, 248))
    gb = 1e9
    assert est["non_invertible"]["states"] / gb == pytest.approx(21.96, rel=0.01)
    assert est["non_invertible"]["kernels"] / gb == pytest.approx(41.16, rel=0.01)
    assert est["invertible_full"]["states"] / gb == pytest.approx(2.19, rel=0.01)
    assert est["invertible_blr"]["kernels"] / gb == pytest.approx(0.23, rel=0.01)
    with pytest.raises(ValueError, match="input_shape"):
        memory_estimate(net, (1, 3, 8, 8, 8))
