"""Partial cross-entropy on sparse labels, and ways to get enough channels for it.

An invertible network has as many output channels as input channels. The paper's answer
(§3.2-3.3): read the class scores from the first ``n_classes`` output channels only, only
where a label exists, optionally on a single slice of the output (3D data -> 2D map).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .haar import haar_coarsen

__all__ = ["partial_cross_entropy", "expand_channels", "coarsen_labels"]


def partial_cross_entropy(y: torch.Tensor, labels: torch.Tensor, n_classes: int,
                          weight: Optional[torch.Tensor] = None,
                          slice: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Cross-entropy over the first ``n_classes`` channels at labelled voxels only.

    Parameters
    ----------
    y : torch.Tensor
        Network output of shape ``(N, C, *spatial)`` with ``C >= n_classes``; channel
        ``k - 1`` holds the score of class ``k``.
    labels : torch.Tensor
        Integer labels, 0 = unlabelled and 1..n_classes the classes. Shape ``(N, *spatial)``
        (or ``spatial`` alone when ``N == 1``); with ``slice``, the spatial shape without
        the sliced axis.
    n_classes : int
        Number of classes K.
    weight : torch.Tensor, optional
        Per-class weights of length K (class balancing).
    slice : (axis, index), optional
        Compute the loss on one index along one spatial axis only (``axis`` counts spatial
        axes from 0), the paper's 3D -> 2D case (e.g. the band axis of a hyperspectral cube).

    Returns
    -------
    torch.Tensor
        Scalar: the (weighted) mean over labelled voxels, or a zero that still depends on
        ``y`` (so gradients are zero, not missing) when there are no labels.
    """
    if y.ndim < 3:
        raise ValueError(f"y must have shape (N, C, *spatial), got {tuple(y.shape)}")
    if not 1 <= n_classes <= y.shape[1]:
        raise ValueError(
            f"n_classes={n_classes} needs 1..{y.shape[1]} output channels; expand the input "
            f"channels first (expand_channels)"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    scores = y[:, :n_classes]
    if slice is not None:
        axis, index = slice
        spatial = y.ndim - 2
        if not -spatial <= axis < spatial:
            raise ValueError(f"slice axis {axis} is out of range for {spatial} spatial axes")
        scores = scores.select(2 + axis % spatial, index)
    if labels.ndim == scores.ndim - 2 and scores.shape[0] == 1:
        labels = labels.unsqueeze(0)
    if tuple(labels.shape) != (scores.shape[0], *scores.shape[2:]):
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} do not match the scores' "
            f"{(scores.shape[0], *scores.shape[2:])}"
        )
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(f"weight must have shape ({n_classes},), got {tuple(weight.shape)}")
    labelled = labels > 0
    if not bool(labelled.any()):
        return scores.sum() * 0.0
    if int(labels.max()) > n_classes:
        raise ValueError(f"labels go up to {int(labels.max())} but n_classes is {n_classes}")
    target = labels.long() - 1  # unlabelled -> -1, ignored below
    if weight is not None:
        weight = weight.to(dtype=scores.dtype, device=scores.device)
    return F.cross_entropy(scores, target, weight=weight, ignore_index=-1)


def expand_channels(x: torch.Tensor, min_channels: int, method: str = "repeat") -> torch.Tensor:
    """Give ``x`` at least ``min_channels`` channels, for ``n_classes > channels``.

    Parameters
    ----------
    x : torch.Tensor
        Input of shape ``(N, C, *spatial)``.
    min_channels : int
        Channels needed (e.g. the number of classes).
    method : {"repeat", "haar"}
        ``"repeat"`` tiles the channels ``ceil(min_channels / C)`` times (more memory,
        same resolution). ``"haar"`` Haar-coarsens the input until it has enough channels
        (same memory, lower resolution: compare labels at that resolution with
        :func:`coarsen_labels`).

    Returns
    -------
    torch.Tensor
        ``x`` itself if it already has enough channels.
    """
    channels = x.shape[1]
    if channels >= min_channels:
        return x
    if method == "repeat":
        return x.repeat(1, -(-min_channels // channels), *([1] * (x.ndim - 2)))
    if method == "haar":
        while x.shape[1] < min_channels:
            x = haar_coarsen(x)
        return x
    raise ValueError(f"method must be 'repeat' or 'haar', got {method!r}")


def coarsen_labels(labels: torch.Tensor, times: int, n_classes: int) -> torch.Tensor:
    """Labels at ``2**times`` lower resolution: the most frequent label in each block.

    Unlabelled voxels (0) do not vote; a block with no labelled voxel stays 0. Ties go to
    the smaller class id. ``labels`` has shape ``(N, *spatial)``.
    """
    if times == 0:
        return labels
    factor = 2**times
    spatial = labels.ndim - 1
    votes = F.one_hot(labels.long(), n_classes + 1)[..., 1:]  # (N, *S, K), drops class 0
    votes = votes.movedim(-1, 1).to(torch.float32)
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
    counts = pool(votes, factor)
    best = counts.argmax(1) + 1
    return torch.where(counts.amax(1) > 0, best, torch.zeros_like(best)).to(labels.dtype)
