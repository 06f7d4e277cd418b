"""Models of several member networks: trained side by side, averaged when predicting."""

import copy

import numpy as np
import pytest
import torch

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.errors import InputError
from napari_geoseg.train import Model, Predictor, Trainer, get_preset


@pytest.fixture(scope="module")
def volume():
    return synthetic_seismic((32, 32, 32), seed=1)


@pytest.fixture(scope="module")
def pair(volume):
    """A two-member model and the one-member model trained with the same seed."""
    two = Trainer(volume.image, volume.labels, iterations=3, block=16, seed=4, members=2).train()
    one = Trainer(volume.image, volume.labels, iterations=3, block=16, seed=4).train()
    return two, one


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def test_member_zero_is_the_single_network_and_the_others_differ(pair):
    two, one = pair
    assert len(two.nets) == 2 and len(one.nets) == 1
    # Member 0 draws the same start and blocks as a one-network run: adding members
    # never changes it, so results stay comparable.
    for a, b in zip(params(two.nets[0]), params(one.net)):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(params(two.nets[0]), params(two.nets[1])))


def test_prediction_averages_the_members_probabilities(volume, pair):
    two, _ = pair
    whole = Predictor(two, block=32).predict(volume.image)
    alone = [Predictor(_with_nets(two, [net]), block=32).predict(volume.image)
             for net in two.nets]
    expected = (alone[0].probabilities + alone[1].probabilities) / 2
    np.testing.assert_allclose(whole.probabilities, expected, atol=1e-5)
    assert np.array_equal(whole.labels, np.asarray(two.class_ids)[expected.argmax(0)])


def _with_nets(model, nets):
    clone = copy.copy(model)
    clone.nets = nets
    return clone


def test_members_survive_the_model_file(volume, pair, tmp_path):
    two, _ = pair
    loaded = Model.load(two.save(tmp_path / "two.pt"))
    assert len(loaded.nets) == 2
    for original, read in zip(two.nets, loaded.nets):
        for a, b in zip(params(original), params(read)):
            assert torch.equal(a, b)
    a = Predictor(two, block=32, flips=False).predict(volume.image)
    b = Predictor(loaded, block=32, flips=False).predict(volume.image)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_files_of_format_one_still_load(volume, tmp_path):
    # Format 1 held one bare network (no lifting or head) under "state_dict", and its
    # preset had no fields for the head.
    bare = Trainer(volume.image, volume.labels, iterations=2, block=16,
                   preset=get_preset("fast", head=False, mask_channel=False, step_bound=0.0)).train()
    blob = bare.to_dict()
    blob["format_version"] = 1
    blob["state_dict"] = blob.pop("state_dicts")[0]
    blob["state_dict"] = {k.removeprefix("net."): v for k, v in blob["state_dict"].items()}
    for key in ("head", "spectral_head", "width", "spectral_width", "bands_as_channels", "mask_channel",
                "step_bound"):
        del blob["preset"][key]
    for key in ("bands_as_channels", "mask_channel", "in_channels"):
        del blob[key]
    torch.save(blob, tmp_path / "old.pt")
    loaded = Model.load(tmp_path / "old.pt")
    assert len(loaded.nets) == 1 and not loaded.preset.head and loaded.net.head is None
    for a, b in zip(params(bare.net), params(loaded.net)):
        assert torch.equal(a, b)
    a = Predictor(bare, block=32, flips=False).predict(volume.image)
    b = Predictor(loaded, block=32, flips=False).predict(volume.image)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_continuing_keeps_every_member_and_refuses_another_count(volume, pair):
    two, _ = pair
    trainer = Trainer(volume.image, volume.labels, iterations=1, block=16, model=two)
    assert len(trainer.model.nets) == 2
    trainer.train()
    for before, after in zip(two.nets, trainer.model.nets):
        assert not all(torch.equal(a, b) for a, b in zip(params(before), params(after)))
    with pytest.raises(InputError, match="2 member network"):
        Trainer(volume.image, volume.labels, iterations=1, block=16, model=two, members=3)
    with pytest.raises(InputError, match="members must be positive"):
        Trainer(volume.image, volume.labels, iterations=1, block=16, members=0)


def test_cubes_get_the_presets_spectral_members(volume):
    preset = get_preset("fast")
    assert preset.members_for("spectral") == 3 and preset.members_for("volume") == 1
    cube = np.zeros((32, 32, 8), np.float32)
    labels = np.zeros((32, 32), np.uint8)
    labels[3, 3], labels[20, 20] = 1, 2
    assert len(Trainer(cube, labels, iterations=1).model.nets) == 3
    assert len(Trainer(cube, labels, iterations=1, members=1).model.nets) == 1
    assert len(Trainer(volume.image, volume.labels, iterations=1).model.nets) == 1


def test_stop_leaves_every_member_at_the_same_iteration(volume):
    trainer = Trainer(volume.image, volume.labels, iterations=20, block=16, seed=2, members=2)
    for _progress in trainer.run():
        trainer.stop()
    reference = Trainer(volume.image, volume.labels, iterations=1, block=16, seed=2, members=2).train()
    for net, ref in zip(trainer.model.nets, reference.nets):
        for a, b in zip(params(net), params(ref)):
            assert torch.equal(a, b)
