"""Which labelled voxels training holds out to judge the network by.

The held-out voxels decide the design race and the probe's strength, so they must
stand for the unlabelled volume. A voxel of a well or a stroke has labelled neighbours
in the same well or stroke, of the same class and with nearly the same values; held
out one by one, such voxels reward whatever interpolates along the well rather than
what carries over to the rest of the volume. Labels given as wells or strokes
therefore lose whole wells or strokes (connected groups of labelled voxels); labels
given as scattered pixels lose single pixels.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["connected_groups", "validation_split", "MAX_HELD_SHARE", "MIN_GROUPS", "MIN_PER_CLASS"]

#: Nothing is held out below this many labelled voxels per class on average: from five
#: labelled pixels of a class, holding one out costs training a fifth of what it knows of
#: that class, and a handful of held-out pixels judge no better than chance.
MIN_PER_CLASS = 10
#: Group hold-out needs at least this many groups (wells, strokes).
MIN_GROUPS = 4
#: A group is not held out if the held-out voxels would then exceed this share.
MAX_HELD_SHARE = 0.35


def connected_groups(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Connected group (full connectivity) of each labelled voxel, whatever its class.

    Parameters
    ----------
    points : (N, D) integer array
        Coordinates of the labelled voxels in an array of ``shape``.
    shape : tuple of int
        Shape of the labels.

    Returns
    -------
    (N,) int array
        Group number of each voxel, from 0.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, ndim = points.shape
    if n == 0:
        return np.zeros(0, np.int64)
    keys = np.ravel_multi_index(points.T, shape)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    rows, cols = [], []
    # Half of the 3^D - 1 neighbour offsets suffice: the graph is undirected.
    for offset in itertools.product((-1, 0, 1), repeat=ndim):
        if offset <= (0,) * ndim:
            continue
        neighbours = points + np.array(offset)
        inside = np.all((neighbours >= 0) & (neighbours < np.array(shape)), axis=1)
        wanted = np.ravel_multi_index(neighbours[inside].T, shape)
        at = np.minimum(np.searchsorted(sorted_keys, wanted), n - 1)
        found = sorted_keys[at] == wanted
        rows.append(np.flatnonzero(inside)[found])
        cols.append(order[at[found]])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def validation_split(points: np.ndarray, values: np.ndarray, shape: tuple[int, ...], fraction: float,
                     seed: int, groups: bool = True) -> np.ndarray:
    """Which labelled voxels to hold out (a boolean mask over ``points``).

    With ``groups``, whole connected groups (wells, strokes) are held out, drawn at random until about
    ``fraction`` of the voxels are, skipping a group that would leave one of its
    classes without training voxels or take the held-out share above
    :data:`MAX_HELD_SHARE`. Scattered pixels (most groups a single voxel), fewer than
    :data:`MIN_GROUPS` groups, or no group that can go, fall back to single voxels
    drawn at random. Fewer than 20 labelled voxels, or fewer than
    :data:`MIN_PER_CLASS` per class on average: none held out.

    Parameters
    ----------
    points : (N, D) integer array
        Coordinates of the labelled voxels.
    values : (N,) integer array
        Their classes.
    shape : tuple of int
        Shape of the labels.
    fraction : float
        Share of the voxels to hold out.
    seed : int
        Same seed, same split.
    groups : bool
        Hold out whole groups where the labels come in them; False: single voxels
        always.
    """
    rng = np.random.default_rng(seed)
    n = len(values)
    if n < 20 or n < MIN_PER_CLASS * len(np.unique(values)):
        return np.zeros(n, bool)
    by_voxel = rng.random(n) < fraction
    if not groups:
        return by_voxel
    group_of = connected_groups(points, shape)
    sizes = np.bincount(group_of)
    if len(sizes) < MIN_GROUPS or np.median(sizes) <= 1:
        return by_voxel
    # Voxels of each class in each group, and training voxels left of each class in
    # groups not held out.
    n_values = int(values.max()) + 1
    per_group = np.bincount(group_of * n_values + values, minlength=len(sizes) * n_values).reshape(-1, n_values)
    left = per_group.sum(0)
    chosen, held = [], 0
    for group in rng.permutation(len(sizes)):
        if held >= fraction * n:
            break
        counts = per_group[group]
        if held + sizes[group] > MAX_HELD_SHARE * n or np.any((counts > 0) & (left - counts <= 0)):
            continue
        chosen.append(group)
        held += sizes[group]
        left -= counts
    return np.isin(group_of, chosen) if chosen else by_voxel
