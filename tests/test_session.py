"""The live training session without a viewer: thread, generations, schedule, errors."""

import time

import numpy as np
import pytest

import napari_geoseg.train as train
from napari_geoseg.data import synthetic_seismic
from napari_geoseg.train.session import (
    Finished,
    LiveSession,
    Message,
    PredictionJob,
    PredictionSchedule,
    PredictionUpdate,
    TrainingUpdate,
    focus_box,
)

SHAPE = (24, 24, 32)


@pytest.fixture(scope="module")
def volume():
    return synthetic_seismic(SHAPE, seed=2)


def run_until(session, done, timeout=120.0):
    """Poll the session like the widget's timer does, until ``done(events)`` or the thread ends."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += session.poll()
        if done(events) or any(isinstance(e, Finished) for e in events):
            return events
        time.sleep(0.01)
    raise AssertionError(f"no result in {timeout} s; got {events}")


def of(kind, events):
    return [e for e in events if isinstance(e, kind)]


def test_focus_box_is_a_slab_around_the_slice_on_screen():
    assert focus_box((10, None, None), (24, 24, 32), 8) == (slice(6, 14), slice(0, 24), slice(0, 32))
    assert focus_box((None, 1, None), (24, 24, 32), 8) == (slice(0, 24), slice(0, 8), slice(0, 32))
    assert focus_box((None, None, 31), (24, 24, 32), 64)[2] == slice(0, 32)
    assert focus_box((None, None, None), (24, 24, 32), 8) is None  # a 3D view: everything
    assert focus_box((None, None, 5), (24, 24, 32), 8, mode="spectral") is None  # whole spectra
    assert focus_box(None, (24, 24, 32), 8) is None


def test_schedule_shows_the_focus_first_then_the_whole_image_then_paces_itself():
    schedule = PredictionSchedule(focus_interval=2, full_interval=8, max_share=0.25)
    assert schedule.due(0.0, has_focus=True) == "focus"
    schedule.record("focus", 0.0, 0.5)
    assert schedule.due(0.6, has_focus=True) == "full"  # no whole prediction yet
    schedule.record("full", 1.0, 5.0)  # 4 s: the next whole one waits 16 s
    assert schedule.due(6.0, has_focus=True) is None
    assert schedule.due(6.0, has_focus=True, focus_moved=True) == "focus"
    assert schedule.due(7.1, has_focus=True) == "focus"  # 2 s after the last prediction
    assert schedule.due(7.1, has_focus=False) is None
    assert schedule.due(21.1, has_focus=False) == "full"
    schedule.start_generation()  # new labels: at once, the focus first
    assert schedule.due(7.2, has_focus=True) == "focus"
    assert schedule.due(7.2, has_focus=False) == "full"


def test_a_run_reports_progress_and_ends_with_a_whole_prediction(volume):
    labels = volume.labels.copy()
    session = LiveSession(volume.image, labels, iterations=3, block=16, live=False,
                          class_names={1: "shale", 2: "sand"})
    session.start()
    events = run_until(session, lambda e: False)
    assert session.join(30)
    assert [e.progress.iteration for e in of(TrainingUpdate, events)] == [1, 2, 3]
    assert of(Finished, events)[-1].reason == "done"
    assert not of(Message, events)
    final = of(PredictionUpdate, events)[-1]
    assert final.final and final.region is None and final.generation == 0
    assert final.prediction.labels.shape == SHAPE
    assert set(np.unique(final.prediction.labels)) <= {1, 2, 3}
    np.testing.assert_array_equal(labels, volume.labels)  # never written to
    model = session.latest_model()
    assert model.class_names[:2] == ["shale", "sand"]


def test_the_box_on_screen_is_predicted_first(volume):
    session = LiveSession(volume.image, volume.labels.copy(), iterations=4, block=16, live=False)
    session.set_focus((12, None, None))  # inline 12 on screen
    box = (slice(8, 16), slice(0, 24), slice(0, 32))  # 2 x the fast net's size step of 4
    session.start()
    events = run_until(session, lambda e: False)
    predictions = of(PredictionUpdate, events)
    assert predictions[0].region == box
    assert predictions[0].prediction.labels.shape == (8, 24, 32)
    assert any(p.region is None for p in predictions[1:])


def test_new_labels_continue_from_the_current_weights(volume, monkeypatch):
    made = []

    class RecordingTrainer(train.Trainer):
        def __init__(self, image, labels, **kwargs):
            made.append((kwargs.get("model"), labels))
            super().__init__(image, labels, **kwargs)

    monkeypatch.setattr(train, "Trainer", RecordingTrainer)
    session = LiveSession(volume.image, volume.labels.copy(), iterations=1000, block=16)
    session.start()
    run_until(session, lambda e: len(of(TrainingUpdate, e)) >= 2)
    stroke = volume.labels.copy()
    stroke[2:6, 2:6, :] = volume.truth[2:6, 2:6, :]
    assert session.update_labels(stroke) == 1
    events = run_until(session, lambda e: any(p.generation == 1 for p in of(PredictionUpdate, e)))
    session.stop()
    assert session.join(30)
    assert any(p.generation == 1 for p in of(PredictionUpdate, events))
    assert len(made) == 2
    assert made[0][0] is None and made[1][0] is not None  # the second run continues the model
    assert made[1][1] is stroke
    after_stroke = [e for e in events if isinstance(e, TrainingUpdate) and e.generation == 1]
    assert after_stroke[0].progress.iteration == 1 and after_stroke[0].step > 2


def test_labels_with_one_class_end_the_session_in_words(volume):
    one_class = np.where(volume.labels > 0, 1, 0).astype(np.uint8)
    session = LiveSession(volume.image, one_class, iterations=3, block=16)
    session.start()
    events = run_until(session, lambda e: False)
    assert [m.level for m in of(Message, events)] == ["error"]
    assert "label at least two classes" in of(Message, events)[0].text
    assert of(Finished, events)[-1].reason == "error"


def test_bad_new_labels_keep_the_previous_ones(volume):
    session = LiveSession(volume.image, volume.labels.copy(), iterations=1000, block=16)
    session.start()
    run_until(session, lambda e: len(of(TrainingUpdate, e)) >= 1)
    session.update_labels(np.zeros(SHAPE, np.uint8))
    events = run_until(session, lambda e: any(u.generation == 1 for u in of(TrainingUpdate, e)))
    session.stop()
    assert session.join(30)
    warnings = [m for m in of(Message, events) if m.level == "warning"]
    assert warnings and "the new labels were not used" in warnings[0].text
    assert not any(isinstance(e, Finished) and e.reason == "error" for e in events)


def test_stop_at_once_ends_the_thread(volume):
    for _ in range(3):
        session = LiveSession(volume.image, volume.labels.copy(), iterations=1000, block=16)
        session.start()
        session.stop()
        assert session.join(30)
        assert of(Finished, session.poll())[-1].reason == "stopped"


def test_prediction_job(volume):
    session = LiveSession(volume.image, volume.labels.copy(), iterations=2, block=16, live=False)
    session.start()
    session.join(60)
    model = session.latest_model()
    other = synthetic_seismic((16, 24, 16), seed=3).image
    job = PredictionJob(model, other)
    job.start()
    events = run_until(job, lambda e: False)
    assert of(PredictionUpdate, events)[0].prediction.labels.shape == (16, 24, 16)
    wrong = PredictionJob(model, np.zeros((8, 8), np.float32))
    wrong.start()
    events = run_until(wrong, lambda e: False)
    assert of(Message, events)[0].level == "error" and "volume" in of(Message, events)[0].text


def assemble(updates, shape):
    """The labels of chunked whole-image updates put together."""
    labels = np.full(shape, 255, np.uint8)
    for update in updates:
        labels[update.region] = update.prediction.labels
    return labels


def test_chunked_whole_predictions_equal_one_piece(volume):
    session = LiveSession(volume.image, volume.labels.copy(), iterations=2, block=16, live=False, chunk=16)
    session.start()
    updates = [u for u in of(PredictionUpdate, run_until(session, lambda e: False)) if u.whole]
    assert session.join(30)
    model = session.latest_model()
    # The last whole prediction (with flips) in 2 x 2 x 2 chunks of 16, the last one final.
    last = updates[-8:]
    assert [u.part for u in last] == [(i, 8) for i in range(8)]
    assert [u.final for u in last] == [False] * 7 + [True] and last[-1].complete
    whole = train.Predictor(model, flips=True).predict(volume.image)
    np.testing.assert_array_equal(assemble(last, SHAPE), whole.labels)
    # Applying a model in chunks: the same labels, and masked voxels counted over the image.
    image = volume.image.copy()
    image[:3, :2, :5] = np.nan
    job = PredictionJob(model, image, chunk=16)
    job.start()
    parts = of(PredictionUpdate, run_until(job, lambda e: False))
    assert len(parts) == 8 and parts[-1].final and parts[-1].masked == 3 * 2 * 5
    np.testing.assert_array_equal(assemble(parts, SHAPE), train.Predictor(model).predict(image).labels)


def test_ordered_units_reach_the_predictions(volume):
    session = LiveSession(volume.image, volume.labels.copy(), iterations=2, block=16, live=False,
                          ordered_units=True)
    session.start()
    final = of(PredictionUpdate, run_until(session, lambda e: False))[-1]
    assert session.join(30) and final.final
    assert np.all(np.diff(final.prediction.labels.astype(int), axis=-1) >= 0)
    job = PredictionJob(session.latest_model(), volume.image, ordered_units=True)
    job.start()
    labels = of(PredictionUpdate, run_until(job, lambda e: False))[-1].prediction.labels
    assert np.all(np.diff(labels.astype(int), axis=-1) >= 0)


def test_training_too_large_for_memory_is_refused_with_the_block_option(volume, monkeypatch):
    from napari_geoseg.train import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 2**16)
    session = LiveSession(volume.image, volume.labels.copy(), iterations=2, block=16, live=False)
    session.start()
    events = run_until(session, lambda e: False)
    errors = [m for m in of(Message, events) if m.level == "error"]
    assert errors and "training needs about" in errors[0].text and errors[0].option == "block"
    assert of(Finished, events)[-1].reason == "error" and session.latest_model() is None


def test_the_warm_up_trains_and_predicts_without_error(caplog):
    # It only gives a head start, so a failure is logged, not raised: check the log.
    import logging

    from napari_geoseg.train.session import warm_up

    caplog.set_level(logging.DEBUG, logger="napari_geoseg.train.session")
    thread = warm_up()
    thread.join(120)
    assert not thread.is_alive()
    assert "warm-up failed" not in caplog.text
