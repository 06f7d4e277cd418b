"""Held-out labels (train.holdout): whole wells and strokes, single scattered pixels."""
from dataclasses import replace

import numpy as np
import pytest

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.train import Trainer, get_preset
from napari_geoseg.train.holdout import MAX_HELD_SHARE, connected_groups, validation_split
from napari_geoseg.train.reading import labelled_voxels


def wells(shape=(20, 20, 30), places=((2, 2), (2, 15), (15, 2), (15, 15), (9, 9)), classes_at=None):
    """Labels in full-depth 2 x 2 columns: class 1 above, 2 in the middle, 3 below."""
    labels = np.zeros(shape, np.int16)
    for i, j in places:
        column = labels[i:i + 2, j:j + 2]
        column[..., :10], column[..., 10:20], column[..., 20:] = 1, 2, 3
    return labels


def test_groups_are_the_connected_wells_and_strokes_whatever_their_class():
    labels = wells(places=((2, 2), (2, 15)))
    labels[10, 10, 5:9] = 1  # a stroke
    labels[11, 11, 9] = 2  # touching it across a corner: the same group
    points, _ = labelled_voxels(labels)
    groups = connected_groups(points, labels.shape)
    assert len(np.unique(groups)) == 3
    for i, j in ((2, 2), (2, 15), (10, 10)):
        at = (points[:, 0] >= i) & (points[:, 0] < i + 2) & (points[:, 1] >= j) & (points[:, 1] < j + 2)
        assert len(np.unique(groups[at])) == 1  # one well, one group, its three classes in it
    assert groups[np.all(points == (11, 11, 9), axis=1)] == groups[np.all(points == (10, 10, 5), axis=1)]


@pytest.mark.parametrize("seed", range(5))
def test_whole_wells_are_held_out(seed):
    labels = wells()
    points, values = labelled_voxels(labels)
    held = validation_split(points, values, labels.shape, 0.1, seed)
    columns = {tuple(p) for p in points[held][:, :2]}
    trained = {tuple(p) for p in points[~held][:, :2]}
    assert held.any() and not columns & trained  # no trace is both held out and trained on
    assert held.sum() == 120  # one well of five: the first one reaches a tenth
    assert set(np.unique(values[~held])) == {1, 2, 3}


def test_a_class_that_only_one_group_has_is_never_held_out():
    labels = wells()
    labels[9:11, 9:11, 20:] = 4  # class 4 only in the middle well
    points, values = labelled_voxels(labels)
    for seed in range(20):
        held = validation_split(points, values, labels.shape, 0.3, seed)
        assert 4 not in values[held] and held.mean() <= MAX_HELD_SHARE


def test_scattered_pixels_are_held_out_one_by_one_as_before():
    rng = np.random.default_rng(0)
    labels = np.zeros((50, 50), np.int16)
    labels.flat[rng.choice(2500, 60, replace=False)] = rng.integers(1, 4, 60)
    points, values = labelled_voxels(labels)
    held = validation_split(points, values, labels.shape, 0.1, seed=3)
    np.testing.assert_array_equal(held, np.random.default_rng(3).random(len(values)) < 0.1)


def test_too_few_groups_fall_back_to_voxels():
    labels = wells(places=((2, 2), (2, 15), (15, 2)))
    points, values = labelled_voxels(labels)
    held = validation_split(points, values, labels.shape, 0.1, seed=0)
    np.testing.assert_array_equal(held, np.random.default_rng(0).random(len(values)) < 0.1)


def test_the_trainer_holds_out_whole_wells_when_told_to():
    volume = synthetic_seismic((32, 32, 32), seed=1)
    traces = lambda points: {tuple(p) for p in points[:, :2]}  # noqa: E731
    groups = Trainer(volume.image, volume.labels, iterations=2, block=16,
                     preset=replace(get_preset("fast"), hold_out_groups=True))
    held = groups._validation_points
    assert len(held) and not traces(held) & traces(groups._train_points)
    voxels = Trainer(volume.image, volume.labels, iterations=2, block=16)  # the default
    assert not voxels.preset.hold_out_groups
    assert traces(voxels._validation_points) & traces(voxels._train_points)


def test_a_few_labelled_pixels_per_class_are_all_trained_on():
    rng = np.random.default_rng(0)
    labels = np.zeros((60, 60), np.int16)
    # Five pixels of each of eight classes (40 pixels): none is held out ...
    for k in range(1, 9):
        labels.flat[rng.choice(np.flatnonzero(labels.ravel() == 0), 5, replace=False)] = k
    points, values = labelled_voxels(labels)
    assert not validation_split(points, values, labels.shape, 0.3, seed=0).any()
    # ... ten of each, and a share of them is.
    for k in range(1, 9):
        labels.flat[rng.choice(np.flatnonzero(labels.ravel() == 0), 5, replace=False)] = k
    points, values = labelled_voxels(labels)
    assert validation_split(points, values, labels.shape, 0.3, seed=0).any()
