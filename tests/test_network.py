import pytest
import torch

from napari_geoseg.nn import HyperbolicNet, invertibility_error


def deep_net(dtype, dim=3):
    """30 layers with three coarsenings, Glorot weights (the paper's Table 3 layout)."""
    return HyperbolicNet.symmetric(2, depths=(2, 3, 3, 10), ranks=(4, 8, 16, 16),
                                   up_depths=(3, 3, 6), dim=dim, dtype=dtype)


def test_inverse_float64_depth_30():
    net = deep_net(torch.float64)
    assert len(net.layers) == 30 and net.input_multiple == 8
    x = torch.randn(1, 2, 16, 16, 16, dtype=torch.float64)
    assert invertibility_error(net, x) <= 1e-10


def test_inverse_float32_depth_30():
    net = deep_net(torch.float32)
    x = torch.randn(1, 2, 32, 32, 32)
    assert invertibility_error(net, x) <= 1e-5


def test_inverse_2d_and_batch():
    net = deep_net(torch.float64, dim=2)
    x = torch.randn(3, 2, 32, 24, dtype=torch.float64)
    y_prev, y = net(x)
    assert y.shape == x.shape and y_prev.shape == x.shape
    assert (net.inverse(y_prev, y) - x).abs().max() <= 1e-10


def test_bias_and_trained_like_weights_stay_invertible():
    net = HyperbolicNet(4, [(None, 2), ("coarsen", 8), (None, 3), ("refine", 2)], dim=3,
                        dtype=torch.float64)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(1, 4, 8, 8, 8, dtype=torch.float64)
    assert invertibility_error(net, x) <= 1e-10


def test_both_paths_compute_the_same_outputs():
    net = HyperbolicNet(3, [(None, 2), ("coarsen", 4), ("refine", 2)], dim=2)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    net.memory_efficient = True
    a = net(x)
    net.memory_efficient = False
    b = net(x)
    for u, v in zip(a, b):
        assert torch.equal(u, v)


@pytest.mark.parametrize("dim", [2, 3])
def test_prediction_path_updates_in_place_and_equals_the_layer_steps(dim):
    torch.manual_seed(0)
    net = HyperbolicNet.symmetric(4, depths=(2, 2, 2), ranks=(4, 8, 8), dim=dim)
    for layer in net.layers:
        torch.nn.init.normal_(layer.bias, std=0.2)
    x = torch.randn(1, 4, *[16] * dim)
    before = x.clone()
    with torch.no_grad():
        fast = net(x)
        cur, vel = x, torch.zeros_like(x)
        for index in range(len(net.layers)):
            cur, vel = net.step(index, cur, vel)
    assert torch.equal(x, before)  # the caller's input is not updated in place
    torch.testing.assert_close(fast[1], cur, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast[0], cur - vel, rtol=1e-5, atol=1e-5)


def test_output_channels_follow_resampling():
    net = HyperbolicNet(1, [("coarsen", 4), ("coarsen", 4), ("refine", 4)], dim=3)
    assert [layer.channels for layer in net.layers] == [8, 64, 8]
    assert net.out_channels == 8 and net.input_multiple == 4
    y_prev, y = net(torch.randn(1, 1, 8, 8, 8))
    assert y.shape == (1, 8, 4, 4, 4)


def test_symmetric_design_matches_paper_table_3():
    net = HyperbolicNet.symmetric(12, (2, 3, 3, 10), (8, 16, 32, 32), up_depths=(3, 3, 6),
                                  device="meta")
    channels = [layer.channels for layer in net.layers]
    ranks = [layer.rank for layer in net.layers]
    assert len(net.layers) == 30
    assert channels == [12] * 2 + [96] * 3 + [768] * 3 + [6144] * 10 + [768] * 3 + [96] * 3 + [12] * 6
    assert ranks == [8] * 2 + [16] * 3 + [32] * 3 + [32] * 10 + [32] * 3 + [16] * 3 + [8] * 6
    mirrored = HyperbolicNet.symmetric(12, device="meta")
    assert len(mirrored.layers) == 26 and mirrored.out_channels == 12


@pytest.mark.parametrize(
    "shape, message",
    [((1, 2, 12, 16, 16), "not divisible by 8"), ((1, 3, 16, 16, 16), "expects 2 input channels"),
     ((1, 2, 16, 16), "expects input of shape")],
)
def test_clear_input_errors(shape, message):
    net = deep_net(torch.float32)
    with pytest.raises(ValueError, match=message):
        net(torch.zeros(shape))


def test_clear_design_errors():
    with pytest.raises(ValueError, match="cannot refine 3 channels"):
        HyperbolicNet(3, [("refine", 2)], dim=2)
    with pytest.raises(ValueError, match="resample must be one of"):
        HyperbolicNet(3, [("pool", 2)])
    with pytest.raises(ValueError, match="at least one layer"):
        HyperbolicNet(3, [])
    with pytest.raises(ValueError, match="up_depths needs 2"):
        HyperbolicNet.symmetric(3, depths=(1, 1, 1), ranks=(1, 1, 1), up_depths=(1,))


def test_cpu_states_stay_channels_last_with_the_same_numbers(monkeypatch):
    # On CPUs 3D float32 states are kept channels-last (oneDNN's layout; cheap Haar
    # transforms). Forcing the default layout must give the same outputs and gradients.
    import napari_geoseg.nn.hyperbolic as hyperbolic

    torch.manual_seed(0)
    net = HyperbolicNet.symmetric(4, depths=(1, 2, 2), ranks=(2, 4, 8), dim=3)
    x = torch.randn(1, 4, 16, 16, 16)

    def run():
        net.zero_grad()
        _, y = net(x)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        return y.detach(), [p.grad.clone() for p in net.parameters()]

    y, grads = run()
    if torch.backends.mkldnn.is_available():
        assert y.is_contiguous(memory_format=torch.channels_last_3d) and not y.is_contiguous()
    monkeypatch.setattr(hyperbolic, "state_layout", lambda x: torch.contiguous_format)
    y_default, grads_default = run()
    assert torch.allclose(y, y_default, atol=1e-5)
    for a, b in zip(grads, grads_default):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
