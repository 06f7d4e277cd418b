from pathlib import Path

import numpy as np
import pytest

from napari_geoseg.data import synthetic_hyperspectral, synthetic_seismic
from napari_geoseg.data.samples import sample_arrays, write_samples

ROOT = Path(__file__).resolve().parents[1]


def test_synthetic_seismic_is_deterministic_and_labelled_in_columns():
    a, b = synthetic_seismic((32, 32, 48), seed=3), synthetic_seismic((32, 32, 48), seed=3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert a.image.dtype == np.float32 and a.truth.min() == 1 and a.truth.max() == 3
    labelled = a.labels > 0
    # Labels are whole columns (every sample of a labelled trace) that agree with the truth.
    assert np.all(labelled.all(-1) == labelled.any(-1))
    assert np.array_equal(a.labels[labelled], a.truth[labelled])
    assert labelled.any(-1).sum() == 4 * 9


def test_synthetic_hyperspectral_has_a_few_labels_per_class():
    scene = synthetic_hyperspectral((32, 32), n_bands=20, labels_per_class=3, seed=1)
    assert scene.image.shape == (32, 32, 20)
    assert np.bincount(scene.labels.ravel(), minlength=5)[1:].tolist() == [3, 3, 3, 3]
    labelled = scene.labels > 0
    assert np.array_equal(scene.labels[labelled], scene.truth[labelled])


def test_repository_samples_are_what_the_code_makes(tmp_path):
    folder = ROOT / "sample_data"
    if not folder.is_dir():
        pytest.skip("no sample_data folder in this checkout")
    sizes = sum(p.stat().st_size for p in folder.iterdir())
    assert sizes < 5 * 2**20
    for name, array in sample_arrays().items():
        stored = np.load(folder / name)
        assert stored.dtype == array.dtype and stored.shape == array.shape
        np.testing.assert_allclose(stored.astype(np.float32), array.astype(np.float32), atol=1e-2)
    assert len(write_samples(tmp_path)) == 6
    assert write_samples(tmp_path) == []  # existing files are kept
