"""The fully invertible hyperbolic (leapfrog) network.

``Y_0 = Y_1 = X`` and, for each layer ``j``,
``Y_j = 2 W_j Y_{j-1} - W_j Y_{j-2} + h^2 f_j(W_j Y_{j-1})`` with ``f_j`` a
:class:`~napari_geoseg.nn.blr.SymmetricBLRLayer` and ``W_j`` an orthonormal Haar
coarsening or refinement (or the identity) applied to both states before the layer.
Each layer can be undone exactly, ``Y_{j-2} = W_j^{-1}[2 W_j Y_{j-1} - Y_j + h^2 f_j(W_j Y_{j-1})]``,
so training never needs to keep the states of all layers: the memory-efficient
backward pass rebuilds them from the last two, one layer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch import nn

from .blr import SymmetricBLRLayer, conv_k, conv_kt, state_layout, symmetric_blr_parts, symmetric_blr_vjp
from .haar import haar_coarsen, haar_refine

__all__ = ["HyperbolicNet"]

RESAMPLES = (None, "coarsen", "refine")


class HyperbolicNet(nn.Module):
    """Fully invertible multi-level hyperbolic network with symmetric BLR layers.

    Parameters
    ----------
    in_channels : int
        Channels of the input ``X``.
    layers : sequence of (resample, rank)
        One entry per layer. ``resample`` is ``None``, ``"coarsen"`` or ``"refine"`` and is
        applied to both states before that layer; ``rank`` is the layer's block rank.
    h : float
        Artificial time step. The reference examples use 0.2; stability needs about
        ``h * ||K||_2 <= 2`` per layer (see :func:`~napari_geoseg.nn.layer_step_norms`).
    dim : int
        Number of spatial axes, 2 or 3.
    memory_efficient : bool
        If True, gradients are computed by rebuilding the states backwards inside one
        ``torch.autograd.Function``, so the memory for states does not grow with depth.
        If False, plain autograd keeps every state (same numbers, the reference path).

    Examples
    --------
    >>> net = HyperbolicNet(4, [(None, 4), ("coarsen", 8), ("refine", 4)], dim=2)
    >>> x = torch.randn(1, 4, 16, 16)
    >>> y_prev, y = net(x)
    >>> torch.allclose(net.inverse(y_prev, y), x, atol=1e-5)
    True
    """

    def __init__(self, in_channels: int, layers: Sequence[tuple[Optional[str], int]],
                 h: float = 0.2, dim: int = 3, memory_efficient: bool = True,
                 *, device=None, dtype=None) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        if len(layers) == 0:
            raise ValueError("a HyperbolicNet needs at least one layer")
        if not h > 0:
            raise ValueError(f"the time step h must be positive, got {h}")
        self.in_channels, self.dim, self.h = in_channels, dim, float(h)
        self.memory_efficient = memory_efficient
        bands = 2**dim
        channels, level, max_level = in_channels, 0, 0
        resample, levels, blocks = [], [], []
        for index, spec in enumerate(layers):
            try:
                kind, rank = spec
            except (TypeError, ValueError):
                raise ValueError(f"layer {index}: expected a (resample, rank) pair, got {spec!r}") from None
            if kind not in RESAMPLES:
                raise ValueError(f"layer {index}: resample must be one of {RESAMPLES}, got {kind!r}")
            if kind == "coarsen":
                channels, level = channels * bands, level + 1
            elif kind == "refine":
                if channels % bands:
                    raise ValueError(
                        f"layer {index}: cannot refine {channels} channels in {dim}D "
                        f"(needs a multiple of {bands})"
                    )
                channels, level = channels // bands, level - 1
            max_level = max(max_level, level)
            resample.append(kind)
            levels.append(level)
            blocks.append(SymmetricBLRLayer(channels, int(rank), dim, device=device, dtype=dtype))
        self.layers = nn.ModuleList(blocks)
        self.resample: tuple[Optional[str], ...] = tuple(resample)
        self.levels: tuple[int, ...] = tuple(levels)
        self.out_channels = channels
        #: Spatial sizes of the input must be multiples of this (2 ** deepest coarsening).
        self.input_multiple = 2**max_level

    @classmethod
    def symmetric(cls, in_channels: int, depths: Sequence[int] = (2, 3, 3, 10),
                  ranks: Sequence[int] = (8, 16, 32, 32), dim: int = 3, h: float = 0.2,
                  *, up_depths: Optional[Sequence[int]] = None, memory_efficient: bool = True,
                  device=None, dtype=None) -> "HyperbolicNet":
        """U-shaped design of the paper's Table 3.

        Level ``k`` (``k = 0`` at full resolution) has ``depths[k]`` layers of block rank
        ``ranks[k]``; the first layer of each deeper level coarsens. The way back up refines
        into each shallower level, with ``up_depths`` layers there (default: the mirrored
        ``depths[-2::-1]``) and the mirrored ranks. The paper's 30-layer seismic design is
        ``symmetric(12, (2, 3, 3, 10), (8, 16, 32, 32), up_depths=(3, 3, 6))``; the mirrored
        default gives 26 layers.
        """
        depths, ranks = list(depths), list(ranks)
        if len(depths) != len(ranks) or not depths:
            raise ValueError(f"depths and ranks need the same non-zero length, got {depths} and {ranks}")
        up = list(depths[-2::-1]) if up_depths is None else list(up_depths)
        if len(up) != len(depths) - 1:
            raise ValueError(f"up_depths needs {len(depths) - 1} entries, got {up}")
        if min(depths + up) < 1:
            raise ValueError(f"every level needs at least one layer, got depths {depths} and {up}")
        layers: list[tuple[Optional[str], int]] = []
        for level, (depth, rank) in enumerate(zip(depths, ranks)):
            layers += [("coarsen" if level and j == 0 else None, rank) for j in range(depth)]
        for level, depth in zip(range(len(depths) - 2, -1, -1), up):
            layers += [("refine" if j == 0 else None, ranks[level]) for j in range(depth)]
        return cls(in_channels, layers, h=h, dim=dim, memory_efficient=memory_efficient,
                   device=device, dtype=dtype)

    # -- the pieces of one layer -------------------------------------------------------
    def _to_layer(self, index: int, *states: torch.Tensor) -> list[torch.Tensor]:
        """Apply W_j (the layer's resampling) to each state."""
        kind = self.resample[index]
        if kind == "coarsen":
            return [haar_coarsen(s, self.dim) for s in states]
        if kind == "refine":
            return [haar_refine(s, self.dim) for s in states]
        return list(states)

    def _from_layer(self, index: int, *states: torch.Tensor) -> list[torch.Tensor]:
        """Apply W_j^{-1} = W_j^T to each state (or state gradient)."""
        kind = self.resample[index]
        if kind == "coarsen":
            return [haar_refine(s, self.dim) for s in states]
        if kind == "refine":
            return [haar_coarsen(s, self.dim) for s in states]
        return list(states)

    def step(self, index: int, cur: torch.Tensor, vel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One leapfrog layer in summed form: (Y_{j-1}, V_{j-1}) -> (Y_j, V_j).

        ``V_j = Y_j - W Y_{j-1}`` is the velocity. ``V_j = W V_{j-1} + h^2 f(W Y_{j-1})``
        and ``Y_j = W Y_{j-1} + V_j`` are the same recursion as
        ``Y_j = 2 W Y_{j-1} - W Y_{j-2} + h^2 f(W Y_{j-1})``, but rounding errors do not
        pile up through the scheme's double root at 1 (Henrici's summed form): the
        float32 round trip is several times more accurate.
        """
        cur, vel = self._to_layer(index, cur, vel)
        vel = vel + self.h**2 * self.layers[index](cur)
        return cur + vel, vel

    def step_back(self, index: int, cur: torch.Tensor, vel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact inverse of :meth:`step`: (Y_j, V_j) -> (Y_{j-1}, V_{j-1})."""
        cur = cur - vel
        vel = vel - self.h**2 * self.layers[index](cur)
        cur, vel = self._from_layer(index, cur, vel)
        return cur, vel

    # -- whole network -----------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` with a readable message if ``x`` cannot enter the network."""
        if x.ndim != self.dim + 2:
            raise ValueError(
                f"HyperbolicNet ({self.dim}D) expects input of shape (N, C, {', '.join('S' * self.dim)}), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"HyperbolicNet expects {self.in_channels} input channels, got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        sizes = tuple(x.shape[2:])
        if any(s % self.input_multiple for s in sizes):
            coarsenings = self.input_multiple.bit_length() - 1
            raise ValueError(
                f"HyperbolicNet input spatial size {sizes} is not divisible by {self.input_multiple} "
                f"({coarsenings} coarsenings): pad or crop each spatial axis to a multiple of "
                f"{self.input_multiple}"
            )
        weight = self.layers[0].weight
        if x.dtype != weight.dtype:
            raise ValueError(f"input dtype {x.dtype} does not match the network's {weight.dtype}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate ``x``; returns the last two states ``(y_prev, y)``."""
        self.check_input(x)
        x = x.contiguous(memory_format=state_layout(x))
        params = tuple(t for layer in self.layers for t in (layer.weight, layer.bias))
        needs_graph = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params))
        if self.memory_efficient and needs_graph:
            cur, vel = _InvertibleLeapfrog.apply(self, x, *params)
        elif needs_graph:
            cur, vel = x, torch.zeros_like(x)
            for index in range(len(self.layers)):
                cur, vel = self.step(index, cur, vel)
        else:
            cur, vel = self._propagate_in_place(x)
        return cur - vel, cur

    def _propagate_in_place(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` over all layers without autograd, updating the two states in place.

        Prediction's path: no new state-sized tensor per layer (fresh memory costs page
        faults) and the sign of ``f`` goes into the update's factor instead of a pass of
        its own (``benchmarks/predict_speed.py`` times both); equal up to rounding.
        """
        h2 = self.h ** 2
        cur, vel = x.clone(), torch.zeros_like(x)
        for index, layer in enumerate(self.layers):
            cur, vel = self._to_layer(index, cur, vel)
            if isinstance(layer, SymmetricBLRLayer):
                active = torch.relu_(conv_k(cur, layer.weight, layer.bias))
                vel.add_(conv_kt(active, layer.weight, like=cur), alpha=-h2)  # f = -K^T relu(K y + b)
            else:
                vel.add_(layer(cur), alpha=h2)
            cur.add_(vel)
        return cur, vel

    def inverse(self, y_prev: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct the input from the last two states returned by :meth:`forward`."""
        layout = state_layout(y)
        y, y_prev = y.contiguous(memory_format=layout), y_prev.contiguous(memory_format=layout)
        cur, vel = y, y - y_prev
        for index in reversed(range(len(self.layers))):
            cur, vel = self.step_back(index, cur, vel)
        return cur

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, dim={self.dim}, "
                f"h={self.h}, depth={len(self.layers)}, memory_efficient={self.memory_efficient}")


class _InvertibleLeapfrog(torch.autograd.Function):
    """The whole network as one autograd node that stores only its last two states.

    Works on the summed form ``(Y, V)``. The parameters (weight and bias of each layer,
    in layer order) are inputs of the Function and their gradients are returned, so
    optimisers and ``torch.autograd.grad`` see ordinary gradients. The backward pass
    uses the saved parameter tensors, not the module's attributes, so it stays right
    under ``torch.func.functional_call`` and catches in-place changes between forward
    and backward (autograd's version check).
    """

    @staticmethod
    def forward(ctx, net: HyperbolicNet, x: torch.Tensor, *params: torch.Tensor):
        cur, vel = x, torch.zeros_like(x)
        for index in range(len(net.layers)):
            cur, vel = net.step(index, cur, vel)
        ctx.net = net
        ctx.save_for_backward(cur, vel, *params)
        # A loss on y alone leaves the velocity's gradient None: no zero tensor for it.
        ctx.set_materialize_grads(False)
        return cur, vel

    @staticmethod
    def backward(ctx, grad_cur: Optional[torch.Tensor], grad_vel: Optional[torch.Tensor]):
        net: HyperbolicNet = ctx.net
        # Saved outputs come back attached to this node; nothing below builds a graph
        # (each layer's VJP is written out), so plain tensors are all it needs.
        cur, vel, *params = ctx.saved_tensors
        cur, vel = cur.detach(), vel.detach()
        # The loss may hand back gradients in another layout: use the states' one.
        layout = state_layout(cur)
        grad_cur = torch.zeros_like(cur) if grad_cur is None else grad_cur.contiguous(memory_format=layout)
        if grad_vel is not None:
            grad_vel = grad_vel.contiguous(memory_format=layout)
        wants = ctx.needs_input_grad[2:]
        param_grads: list[Optional[torch.Tensor]] = [None] * len(params)
        h2 = net.h**2
        # Peak memory is a handful of states whatever the depth; every temporary is
        # dropped as soon as it is used, and scalings happen in place.
        for index in reversed(range(len(net.layers))):
            # Outputs: Y = c + u and V = u, with c = W Y_{j-1}, u = W V_{j-1} + h^2 f(c).
            weight, bias = params[2 * index].detach(), params[2 * index + 1].detach()
            state = cur - vel  # rebuilt c
            del cur
            # One evaluation of f serves both the reconstruction and the layer's VJP.
            active, f = symmetric_blr_parts(state, weight, bias)
            older_vel = torch.add(vel, f, alpha=-h2)
            del vel, f
            grad_u = grad_cur if grad_vel is None else grad_vel + grad_cur
            del grad_vel
            # The VJP is linear in its seed: scale the results by h^2 instead of the seed.
            grad_state, grad_weight, grad_bias = symmetric_blr_vjp(state, weight, bias, grad_u, active)
            del active
            if wants[2 * index]:
                param_grads[2 * index] = grad_weight.mul_(h2)
            if wants[2 * index + 1]:
                param_grads[2 * index + 1] = grad_bias.mul_(h2)
            del grad_weight, grad_bias
            grad_state = grad_state.mul_(h2).add_(grad_cur)
            del grad_cur
            cur, vel = net._from_layer(index, state, older_vel)
            grad_cur, grad_vel = net._from_layer(index, grad_state, grad_u)
            del state, older_vel, grad_state, grad_u
        # X enters as Y_1 = X with V_1 = 0: only the state slot carries its gradient.
        return (None, grad_cur, *param_grads)
