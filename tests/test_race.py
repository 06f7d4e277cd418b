"""The race of designs (Preset.race): both train, the held-out labels decide, the winner trains on."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_geoseg.data import synthetic_seismic
from napari_geoseg.train import Model, Predictor, Trainer, get_preset
from napari_geoseg.train import trainer as trainer_module
from napari_geoseg.train.probe import PROBE_STRENGTHS, choose_strength, cross_fitted_accuracy

RACING = replace(get_preset("fast"), race=0.5)  # 20 iterations: the race ends after 10


@pytest.fixture(scope="module")
def volume():
    return synthetic_seismic((32, 32, 32), seed=1)


def favour(monkeypatch, design):
    """Make the held-out voxels (which judge the race) prefer ``design``; progress reports are left alone."""
    def race_score(self, nets):
        return 0.9 if self.design == design else 0.5

    monkeypatch.setattr(trainer_module.Trainer, "_race_score", race_score)


def weights(model):
    return [p.detach().clone() for p in model.net.parameters()]


@pytest.mark.parametrize("design", ["head", "bare"])
def test_the_better_design_on_held_out_labels_wins_and_trains_on(volume, monkeypatch, design, tmp_path):
    favour(monkeypatch, design)
    trainer = Trainer(volume.image, volume.labels, preset=RACING, iterations=20, block=16, seed=2)
    assert [rival.design for rival in trainer.rivals] == ["head"]
    model = trainer.train()
    assert trainer.race == {"bare": 0.5, "head": 0.9} if design == "head" else {"bare": 0.9, "head": 0.5}
    assert trainer.design == design and model.net.has_head == (design == "head")
    assert model.preset.head == (design == "head") and trainer.rivals == []
    assert [event.iteration for event in trainer.history] == list(range(1, 21))
    # The race does not disturb the winner: it ends as if it had trained alone.
    alone = Trainer(volume.image, volume.labels, preset=replace(RACING, head=design == "head", race=0.0),
                    iterations=20, block=16, seed=2).train()
    for a, b in zip(weights(model), weights(alone)):
        assert torch.equal(a, b)
    # The winner is a whole model: it saves, loads and predicts with its own design.
    loaded = Model.load(model.save(tmp_path / "m.pt"))
    assert loaded.net.has_head == (design == "head")
    np.testing.assert_array_equal(Predictor(loaded).predict(volume.image).labels,
                                  Predictor(model).predict(volume.image).labels)


def test_a_design_that_diverges_drops_out_of_the_race(volume, monkeypatch):
    step = trainer_module.Trainer._step

    def diverging_head(self, net, optimizer, rng):
        return float("nan") if self.design == "head" else step(self, net, optimizer, rng)

    monkeypatch.setattr(trainer_module.Trainer, "_step", diverging_head)
    trainer = Trainer(volume.image, volume.labels, preset=RACING, iterations=20, block=16)
    trainer.train()
    assert trainer.design == "bare" and trainer.race == {"bare": pytest.approx(trainer.race["bare"])}
    assert len(trainer.history) == 20


def test_stopping_during_the_race_keeps_the_presets_design(volume, monkeypatch):
    favour(monkeypatch, "head")
    trainer = Trainer(volume.image, volume.labels, preset=RACING, iterations=20, block=16)
    for event in trainer.run():
        if event.iteration == 3:
            trainer.stop()
    assert trainer.design == "bare" and trainer.race is None and len(trainer.history) == 3


def test_no_race_where_nothing_is_to_be_chosen(volume):
    # Too short a run to tell designs apart.
    assert Trainer(volume.image, volume.labels, preset=RACING, iterations=10, block=16).rivals == []
    # Off in the preset.
    assert Trainer(volume.image, volume.labels, preset=replace(RACING, race=0.0), iterations=40).rivals == []
    # A continued model keeps its design.
    model = Trainer(volume.image, volume.labels, preset=RACING, iterations=2, block=16).train()
    assert Trainer(volume.image, volume.labels, model=model, iterations=40).rivals == []
    # Cubes take their bands as channels, which needs the head.
    rng = np.random.default_rng(0)
    cube, labels = rng.random((16, 16, 8)).astype(np.float32), np.zeros((16, 16), np.int64)
    labels[rng.random((16, 16)) < 0.2] = 1
    labels[:8][labels[:8] == 1] = 2
    assert Trainer(cube, labels, preset=RACING, mode="spectral", iterations=40).rivals == []


def lucky_probe_scores():
    """Held-out scores where a noise probe at its best strength beats the bare network
    (0.625 against 0.6) but not where its strength is chosen on other voxels."""
    classes = torch.arange(40) % 2
    g = torch.Generator().manual_seed(22)
    head = torch.nn.functional.one_hot(classes, 2).float() * 0.1
    wrong = torch.rand(40, generator=g) < 0.45
    head[wrong] = head[wrong].flip(1)
    probe = torch.randn(40, 2, generator=g)
    bare = torch.nn.functional.one_hot(classes, 2).float()
    bare[:16] = bare[:16].flip(1)  # 16 of 40 wrong: 0.6
    return classes, head, probe, bare


def test_the_race_judges_the_probe_at_a_strength_chosen_on_other_voxels(volume, monkeypatch):
    classes, head, probe, bare = lucky_probe_scores()
    assert max(choose_strength([head], probe, classes)[1].values()) == 0.625  # the old judge's pick: head

    def held_out_scores(self, nets):
        if self.design == "head":
            return [head], probe, classes, PROBE_STRENGTHS
        return [bare], torch.zeros_like(bare), classes, (0.0,)

    monkeypatch.setattr(trainer_module.Trainer, "_held_out_scores", held_out_scores)
    trainer = Trainer(volume.image, volume.labels, preset=RACING, iterations=20, block=16, seed=2)
    trainer.train()
    assert trainer.race == {"bare": 0.6, "head": cross_fitted_accuracy([head], probe, classes, seed=2)}
    assert trainer.race["head"] < 0.6 and trainer.design == "bare"


def test_only_the_design_whose_accuracy_is_reported_validates(volume, monkeypatch):
    favour(monkeypatch, "head")
    measured = []
    validation_accuracy = trainer_module.Trainer.validation_accuracy

    def recording(self, nets=None, max_blocks=4):
        measured.append(self.design)
        return validation_accuracy(self, nets, max_blocks)

    monkeypatch.setattr(trainer_module.Trainer, "validation_accuracy", recording)
    trainer = Trainer(volume.image, volume.labels, preset=RACING, iterations=20, block=16, seed=2, validate_every=5)
    trainer.train()
    # The race's 10 iterations: the bare network at 1 (nothing measured yet), 5 and 10;
    # then the winner at 11 (nothing measured yet), 15 and 20.
    assert measured == ["bare"] * 3 + ["head"] * 3
    reported = [event.validation_accuracy for event in trainer.history]
    assert all(value is not None for value in reported)
