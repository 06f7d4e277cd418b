"""The memory-efficient backward pass against plain autograd, and its memory."""

import pytest
import torch
from torch.autograd.graph import saved_tensors_hooks

from napari_geoseg.nn import HyperbolicNet, partial_cross_entropy


def relative(a, b):
    return float((a - b).norm() / b.norm())


def multilevel_net(dtype=torch.float64):
    # Coarsen and refine, ranks below and above the channel count, non-zero biases.
    net = HyperbolicNet(4, [(None, 2), ("coarsen", 8), (None, 40), ("refine", 3), (None, 5)],
                        dim=3, dtype=dtype)
    for layer in net.layers:
        torch.nn.init.normal_(layer.bias, std=0.3)
    return net


def gradients(net, x, loss_fn, memory_efficient):
    net.memory_efficient = memory_efficient
    loss = loss_fn(*net(x))
    return torch.autograd.grad(loss, (x, *net.parameters()))


@pytest.mark.parametrize("use_slice", [False, True])
def test_memory_efficient_gradients_equal_autograd(use_slice):
    net = multilevel_net()
    x = torch.randn(2, 4, 8, 8, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    if use_slice:
        labels = torch.randint(0, 4, (2, 8, 8))

        def loss_fn(y_prev, y):
            return partial_cross_entropy(y, labels, 3, weight=weight, slice=(2, 5))
    else:
        labels = torch.randint(0, 4, (2, 8, 8, 8))

        def loss_fn(y_prev, y):
            # Both outputs feed the loss, so both gradient slots are exercised.
            return partial_cross_entropy(y, labels, 3, weight=weight) + 0.1 * y_prev.pow(2).mean()

    fast = gradients(net, x, loss_fn, True)
    plain = gradients(net, x, loss_fn, False)
    assert len(fast) == 1 + 2 * len(net.layers)
    for a, b in zip(fast, plain):
        assert relative(a, b) <= 1e-10


def test_float32_gradients_close():
    net = multilevel_net(torch.float32)
    x = torch.randn(1, 4, 16, 16, 16, requires_grad=True)
    labels = torch.randint(0, 3, (1, 16, 16, 16))
    loss_fn = lambda y_prev, y: partial_cross_entropy(y, labels, 2)  # noqa: E731
    for a, b in zip(gradients(net, x, loss_fn, True), gradients(net, x, loss_fn, False)):
        assert relative(a, b) <= 1e-4


def test_gradcheck_tiny_net():
    net = HyperbolicNet(2, [(None, 1), ("coarsen", 3), ("refine", 2)], dim=2, dtype=torch.float64)
    names = [name for name, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in net.parameters())
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        # functional_call swaps the parameters in; the backward must use these.
        return torch.func.functional_call(net, dict(zip(names, params)), (x,))

    assert torch.autograd.gradcheck(run, (x, *params))


def test_optimizer_sees_ordinary_gradients():
    net = multilevel_net(torch.float32)
    x = torch.randn(1, 4, 8, 8, 8)
    labels = torch.randint(0, 4, (1, 8, 8, 8))
    partial_cross_entropy(net(x)[1], labels, 3).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_frozen_layer_gets_no_gradient():
    net = multilevel_net()
    net.layers[1].weight.requires_grad_(False)
    x = torch.randn(1, 4, 8, 8, 8, dtype=torch.float64)
    labels = torch.randint(0, 4, (1, 8, 8, 8))
    partial_cross_entropy(net(x)[1], labels, 3).backward()
    assert net.layers[1].weight.grad is None
    assert net.layers[0].weight.grad is not None


def saved_state_bytes(net, x, labels):
    """Bytes autograd keeps for backward, each storage once, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        loss = partial_cross_entropy(net(x)[1], labels, 3)
    loss.backward()
    return sum(seen.values())


def test_saved_bytes_do_not_grow_with_depth_on_memory_efficient_path():
    x = torch.randn(1, 4, 16, 16, 16)
    labels = torch.randint(0, 4, (1, 16, 16, 16))
    sizes = {}
    for memory_efficient in (True, False):
        for depth in (2, 8):
            net = HyperbolicNet(4, [(None, 4)] * depth, memory_efficient=memory_efficient)
            sizes[memory_efficient, depth] = saved_state_bytes(net, x, labels)
    assert sizes[True, 8] == sizes[True, 2]
    # Plain autograd keeps several tensors per layer.
    assert sizes[False, 8] >= 3 * sizes[False, 2]
    assert sizes[False, 8] > 4 * sizes[True, 8]


def _reference_blr(y, weight, bias):
    """The layer written with autograd-native convolutions only (no custom backward)."""
    conv = torch.nn.functional.conv3d if y.ndim == 5 else torch.nn.functional.conv2d
    pad = weight.shape[-1] // 2
    adjoint = weight.flip(tuple(range(2, weight.ndim))).transpose(0, 1)
    return -conv(torch.relu(conv(y, weight, bias, padding=pad)), adjoint, padding=pad)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-4)])
@pytest.mark.parametrize("shape", [(1, 5, 6, 8, 4), (2, 3, 8, 6), (1, 4, 16, 16, 16)])
def test_blr_backward_equals_autograd_of_plain_convolutions(dtype, tol, shape):
    # The hand-written VJP (oneDNN kernels in float32 on CPU) against autograd through
    # torch's own convolutions: the check that the memory-efficient gradients, which are
    # compared with plain autograd above, are right in the first place.
    from napari_geoseg.nn.blr import symmetric_blr, symmetric_blr_vjp

    gen = torch.Generator().manual_seed(3)
    dim = len(shape) - 2
    y = torch.randn(shape, generator=gen, dtype=dtype, requires_grad=True)
    weight = (0.3 * torch.randn(3, shape[1], *([3] * dim), generator=gen, dtype=dtype)).requires_grad_()
    bias = (0.1 * torch.randn(3, generator=gen, dtype=dtype)).requires_grad_()
    seed = torch.randn(shape, generator=gen, dtype=dtype)
    expected = torch.autograd.grad(_reference_blr(y, weight, bias), (y, weight, bias), seed)
    got = torch.autograd.grad(symmetric_blr(y, weight, bias), (y, weight, bias), seed)
    explicit = symmetric_blr_vjp(y.detach(), weight.detach(), bias.detach(), seed)
    with torch.no_grad():
        assert torch.allclose(symmetric_blr(y, weight, bias), _reference_blr(y, weight, bias), atol=tol, rtol=tol)
    for e, g, x in zip(expected, got, explicit):
        scale = e.abs().max()
        assert (g - e).abs().max() <= tol * scale
        assert (x - e).abs().max() <= tol * scale


def test_blr_function_gradcheck():
    from napari_geoseg.nn.blr import symmetric_blr

    gen = torch.Generator().manual_seed(4)
    y = torch.randn(1, 3, 5, 4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = (0.3 * torch.randn(2, 3, 3, 3, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    bias = (0.1 * torch.randn(2, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(symmetric_blr, (y, weight, bias))
