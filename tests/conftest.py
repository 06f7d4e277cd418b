import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    torch.manual_seed(0)
    yield


@pytest.fixture
def few_labels_cube():
    """A 24 x 24 x 12 cube whose two classes differ in the slope of their spectra, with
    five labelled pixels each (too few per class to hold any out)."""
    rng = np.random.default_rng(0)
    truth = np.ones((24, 24), np.uint8)
    truth[:, 12:] = 2
    slopes = np.where(truth == 1, 1.0, -1.0)[..., None] * np.linspace(-1, 1, 12)
    cube = (1 + 0.3 * slopes + 0.1 * rng.standard_normal(slopes.shape)).astype(np.float32)
    labels = np.zeros_like(truth)
    for k in (1, 2):
        labels.flat[rng.choice(np.flatnonzero(truth.ravel() == k), 5, replace=False)] = k
    return cube, labels
