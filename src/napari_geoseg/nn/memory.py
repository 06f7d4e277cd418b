"""Analytic memory for states and convolution kernels (the paper's Table 1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

from .hyperbolic import HyperbolicNet

__all__ = ["memory_estimate"]


def memory_estimate(net: HyperbolicNet, input_shape: Sequence[int],
                    bytes_per_element: Optional[int] = None) -> dict:
    """Bytes for states and kernels of ``net``'s design on an input of ``input_shape``.

    Three variants of the same layer sequence are counted, with the paper's conventions:

    - ``invertible_blr``: this network. States of three layers (two kept, one being
      rebuilt) and ``3**dim * n * r`` weights per layer.
    - ``invertible_full``: the same invertible network with square symmetric layers,
      ``3**dim * n**2`` weights per layer.
    - ``non_invertible``: plain back-propagation with square layers, one stored state
      per layer.

    Haar transforms keep the number of elements of a state, so every state has
    ``prod(input_shape)`` elements. Biases (``r`` per layer) are left out, as in the
    paper; real autograd also stores intermediate results (``K Y``, the ReLU mask), so
    measured figures are higher than ``non_invertible["states"]``.

    Parameters
    ----------
    net : HyperbolicNet
        The design (a network on the ``meta`` device will do: no weights are read).
    input_shape : sequence of int
        ``(N, C, *spatial)``.
    bytes_per_element : int, optional
        Defaults to the element size of the network's weights (4 for float32).

    Returns
    -------
    dict
        ``{"invertible_blr": {"states": B, "kernels": B}, "invertible_full": {...},
        "non_invertible": {...}, "state_bytes": B, "layers": L}``.
    """
    if len(input_shape) != net.dim + 2 or input_shape[1] != net.in_channels:
        raise ValueError(
            f"input_shape must be (N, {net.in_channels}, {', '.join('S' * net.dim)}), got {tuple(input_shape)}"
        )
    if bytes_per_element is None:
        bytes_per_element = net.layers[0].weight.element_size()
    state = math.prod(input_shape) * bytes_per_element
    depth = len(net.layers)
    blr = full = 0
    for layer in net.layers:
        taps = layer.kernel_size**net.dim
        blr += taps * layer.channels * layer.rank
        full += taps * layer.channels**2
    return {
        "invertible_blr": {"states": 3 * state, "kernels": blr * bytes_per_element},
        "invertible_full": {"states": 3 * state, "kernels": full * bytes_per_element},
        "non_invertible": {"states": depth * state, "kernels": full * bytes_per_element},
        "state_bytes": state,
        "layers": depth,
    }
