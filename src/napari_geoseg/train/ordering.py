"""Labels that keep geological units in their stratigraphic order down every trace.

Layered units (formations, sequences) lie one above the other: going down a trace one
meets unit 1, then unit 2, and so on, never back up (unless the section is overturned
or cut by a reverse fault or an intrusion). A network scores each voxel on its own and
can leave islands of a deeper unit inside a shallower one. :func:`ordered_argmax` picks,
for each trace, the most probable labelling that goes through the units in order: a
Viterbi pass over the trace's class probabilities with "stay or go deeper" as the only
moves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ordered_argmax"]

#: Probabilities decoded at once (classes x traces x samples): bounds the working memory
#: (float64 log-probabilities and int8 back-pointers) to about 9 bytes each, ~38 MB.
CHUNK_VALUES = 1 << 22


def ordered_argmax(probabilities: np.ndarray, rank: Sequence[int] | None = None,
                   chunk: int | None = None) -> np.ndarray:
    """Most probable class index per voxel such that ranks never decrease down each trace.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(K, ..., V)`` class probabilities; the last axis runs down the traces (the
        sample axis of a seismic volume). NaN entries (masked voxels) carry no
        information: any class may be chosen there.
    rank : sequence of int, optional
        Stratigraphic rank of each of the ``K`` classes, smaller above larger (the
        default: the class index, so class 0 is the shallowest); only their order
        matters. Classes of equal rank may alternate.
    chunk : int, optional
        Traces decoded at once (default: as many as :data:`CHUNK_VALUES` allows).

    Returns
    -------
    np.ndarray
        ``(..., V)`` int64 class indices into the first axis of ``probabilities``; where
        the plain argmax already respects the order, the two agree.

    Examples
    --------
    >>> p = np.array([[0.9, 0.4, 0.8], [0.1, 0.6, 0.2]])  # class 1 in the middle only
    >>> p.argmax(0).tolist(), ordered_argmax(p).tolist()
    ([0, 1, 0], [0, 0, 0])
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim < 2:
        raise ValueError(f"expected probabilities of shape (K, ..., V), got {probabilities.shape}")
    k, spatial = probabilities.shape[0], probabilities.shape[1:]
    rank = np.arange(k) if rank is None else np.asarray(rank)
    if rank.shape != (k,):
        raise ValueError(f"need one rank per class ({k}), got {rank.tolist()}")
    # Decode in rank order, then map the positions back to class indices.
    by_rank = np.argsort(rank, kind="stable")
    traces = probabilities.reshape(k, -1, spatial[-1])  # a view for the usual contiguous input
    chunk = chunk or max(1, CHUNK_VALUES // (k * spatial[-1]))
    result = np.empty(traces.shape[1:], np.int64)
    for start in range(0, traces.shape[1], chunk):
        part = traces[by_rank, start:start + chunk]
        result[start:start + chunk] = by_rank[_decode(part, rank[by_rank])]
    return result.reshape(spatial)


def _decode(probabilities: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Viterbi over ``(K, N, V)`` probabilities with classes sorted by ``rank``; positions ``(N, V)``."""
    k, n, v = probabilities.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        log_p = np.log(np.clip(probabilities, 1e-12, 1.0)).astype(np.float64)
    log_p[np.isnan(log_p)] = 0.0
    # Classes of the same rank may follow each other both ways: each may be reached
    # from anything up to the last class of its rank.
    reach = np.searchsorted(rank, rank, side="right") - 1
    score = log_p[:, :, 0].copy()
    back = np.empty((v, k, n), np.int8 if k < 128 else np.int16)
    for z in range(1, v):
        # best[j]: the best score among classes 0..j at the sample above, and which one.
        best = np.maximum.accumulate(score, axis=0)
        is_new_max = np.empty_like(score, dtype=bool)
        is_new_max[0] = True
        is_new_max[1:] = score[1:] > best[:-1]
        arg = np.maximum.accumulate(np.where(is_new_max, np.arange(k)[:, None], 0), axis=0)
        back[z] = arg[reach]
        score = best[reach] + log_p[:, :, z]
    positions = np.empty((n, v), np.int64)
    current = score.argmax(0)
    for z in range(v - 1, -1, -1):
        positions[:, z] = current
        if z:
            current = back[z][current, np.arange(n)]
    return positions
