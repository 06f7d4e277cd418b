import itertools

import numpy as np
import pytest

from napari_geoseg.train.ordering import ordered_argmax


def brute_force(trace: np.ndarray, rank: np.ndarray) -> tuple[int, ...]:
    """The most probable labelling of one (K, V) trace whose ranks never decrease."""
    k, v = trace.shape
    best, best_score = None, -np.inf
    for labels in itertools.product(range(k), repeat=v):
        if any(rank[b] < rank[a] for a, b in zip(labels, labels[1:])):
            continue
        score = sum(np.log(trace[c, z]) for z, c in enumerate(labels))
        if score > best_score:
            best, best_score = labels, score
    return best


@pytest.mark.parametrize("rank", [[0, 1, 2], [2, 0, 1], [0, 1, 1], [10, 3, 7]])
def test_ordered_argmax_is_the_best_ordered_labelling(rank):
    rng = np.random.default_rng(3)
    rank = np.asarray(rank)
    probabilities = rng.dirichlet(np.ones(3), size=(4, 5, 6)).transpose(3, 0, 1, 2)  # (K, 4, 5, V=6)
    decoded = ordered_argmax(probabilities, rank, chunk=7)  # chunks that split the 20 traces
    assert decoded.shape == (4, 5, 6)
    for a, b in itertools.product(range(4), range(5)):
        assert tuple(decoded[a, b]) == brute_force(probabilities[:, a, b], rank)


def test_ordered_argmax_keeps_an_ordered_argmax_and_removes_islands():
    depth = np.arange(12)
    truth = np.where(depth < 4, 0, np.where(depth < 8, 1, 2))
    probabilities = np.full((3, 2, 12), 0.1)
    probabilities[truth, 0, depth] = 0.8
    probabilities[truth, 1, depth] = 0.8
    probabilities[:, 1, 2] = [0.2, 0.1, 0.7]  # an island of the deepest unit near the top
    decoded = ordered_argmax(probabilities)
    assert decoded[0].tolist() == truth.tolist()
    assert decoded[1].tolist() == truth.tolist()
    assert probabilities.argmax(0)[1, 2] == 2


def test_ordered_argmax_ignores_masked_samples():
    probabilities = np.array([[0.9, np.nan, 0.1], [0.1, np.nan, 0.9]])
    assert ordered_argmax(probabilities).tolist() in ([0, 0, 1], [0, 1, 1])


def test_ordered_argmax_checks_its_ranks():
    with pytest.raises(ValueError, match="one rank per class"):
        ordered_argmax(np.ones((3, 4)), rank=[0, 1])
