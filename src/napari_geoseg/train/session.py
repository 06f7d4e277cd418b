"""A live training session: the engine's Trainer and Predictor in a background thread.

The widget hands a :class:`LiveSession` engine-ordered arrays (labels are copies made on
the GUI thread, so painting never races training) and reads what the thread reports from
a queue, on the GUI thread, with :meth:`LiveSession.poll`. Nothing here touches a layer
or imports Qt, so the loop is tested without a viewer.

Generations: every call of :meth:`LiveSession.update_labels` starts a new generation.
The thread then ends the current training iteration, continues training from the
current weights on the new labels (``Trainer(model=...)``), and tags every progress
event and prediction with the generation of the labels it was trained on; predictions
of an older generation are dropped (and a running one is cancelled), so the viewer never
goes back to a result the user has already corrected.

torch is imported in the thread, never at module import.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import queue
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..errors import GeosegError

__all__ = ["LiveSession", "PredictionJob", "PredictionSchedule", "TrainingUpdate", "PredictionUpdate",
           "Message", "Finished", "default_threads", "focus_box", "rename_classes", "warm_up"]

logger = logging.getLogger(__name__)

Region = Optional[tuple[slice, ...]]
Point = Optional[tuple[Optional[int], ...]]


@dataclass(frozen=True)
class TrainingUpdate:
    """One training iteration: ``step`` counts iterations over all generations."""

    generation: int
    step: int
    progress: Any  # napari_geoseg.train.Progress


@dataclass(frozen=True)
class PredictionUpdate:
    """A prediction of the whole image (``region`` None) or of an engine-ordered box of it.

    A whole-image prediction made in chunks (large images) arrives as one update per
    chunk, ``part`` = (index, count) and ``region`` the chunk; only the last can be
    ``final``, and it carries the voxels ``masked`` over the whole image.
    """

    generation: int
    region: Region
    prediction: Any  # napari_geoseg.train.Prediction
    final: bool = False
    part: Optional[tuple[int, int]] = None
    masked: int = 0

    @property
    def whole(self) -> bool:
        """Part of a prediction of the whole image (not a preview of a box)."""
        return self.region is None or self.part is not None

    @property
    def complete(self) -> bool:
        """The whole image's prediction has now been posted in full."""
        return self.region is None or (self.part is not None and self.part[0] == self.part[1] - 1)


@dataclass(frozen=True)
class Message:
    """Something to tell the user: ``level`` is "error", "warning" or "info"."""

    level: str
    text: str
    #: The engine setting an error is about (``GeosegError.option``), for the widget's hint.
    option: Optional[str] = None


@dataclass(frozen=True)
class Finished:
    """The thread ended: ``reason`` is "done", "stopped" or "error"."""

    reason: str


def default_threads() -> int:
    """torch threads for background work: all cores but one, left to the GUI."""
    import os

    return max(1, (os.cpu_count() or 2) - 1)


def focus_box(point: Point, shape: tuple[int, ...], thickness: int, mode: str = "volume") -> Region:
    """The box to predict around the slice on screen, or None to predict everything.

    ``point`` holds, per engine spatial axis, the index of the slice shown (None for the
    axes on screen). Those axes get a slab of ``thickness`` slices (a few multiples of
    the network's size step, so the slice is not at the slab's padded edge); the band
    axis of a cube is always whole.
    """
    if point is None:
        return None
    point = list(point) + [None] * (len(shape) - len(point))
    if mode == "spectral":
        point[2] = None
    if all(p is None for p in point):
        return None
    box = []
    for index, size in zip(point, shape):
        if index is None:
            box.append(slice(0, size))
            continue
        width = min(thickness, size)
        start = min(max(int(index) - width // 2, 0), size - width)
        box.append(slice(start, start + width))
    return tuple(box)


class PredictionSchedule:
    """When to predict between training iterations, and what.

    The first prediction of a generation shows the box on screen (cheap, so a stroke's
    effect appears quickly), the next ones the whole image; predictions take at most
    about ``max_share`` of the time, measured on the previous ones, so that large
    volumes keep training.
    """

    def __init__(self, focus_interval: float = 2.0, full_interval: float = 8.0, max_share: float = 0.25) -> None:
        self.focus_interval, self.full_interval, self.max_share = focus_interval, full_interval, max_share
        self._cost = {"focus": 0.0, "full": 0.0}
        self._last = {"focus": -math.inf, "full": -math.inf}
        self._fresh_generation = True

    def start_generation(self) -> None:
        """New labels: the next prediction is due at once."""
        self._fresh_generation = True

    def _gap(self, kind: str) -> float:
        floor = self.focus_interval if kind == "focus" else self.full_interval
        return max(floor, self._cost[kind] / self.max_share)

    def due(self, now: float, has_focus: bool, focus_moved: bool = False) -> Optional[str]:
        """``"focus"``, ``"full"`` or None after a training iteration at time ``now``."""
        if self._fresh_generation:
            return "focus" if has_focus else "full"
        if now - self._last["full"] >= self._gap("full"):
            return "full"
        last_any = max(self._last.values())
        if has_focus and (focus_moved or now - last_any >= self._gap("focus")):
            return "focus"
        return None

    def record(self, kind: str, started: float, finished: float) -> None:
        """A prediction of ``kind`` ran from ``started`` to ``finished`` (perf_counter seconds)."""
        self._cost[kind] = finished - started
        self._last[kind] = finished
        self._fresh_generation = False


class _Background:
    """A daemon thread that reports to the GUI through a queue."""

    name = "geoseg"

    def __init__(self, threads: Optional[int] = None, chunk: Optional[int] = None) -> None:
        self.threads = threads
        #: Side of the chunks a whole-image prediction is made and posted in when the image
        #: has more voxels than one chunk; None predicts it in one piece.
        self.chunk = chunk
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._predictor = None
        #: ``(blocks done, blocks in all)`` of the whole-image prediction running, or None.
        self.prediction_progress: Optional[tuple[int, int]] = None

    def start(self) -> None:
        """Start the thread (once; not at all if it was stopped before)."""
        if self._thread is not None or self._stop.is_set():
            return
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def done(self) -> bool:
        """The thread has ended, or was stopped before it started."""
        return not self.is_alive and (self._thread is not None or self._stop.is_set())

    def stop(self) -> None:
        """Ask the thread to end soon (after the current iteration or prediction block)."""
        self._stop.set()
        predictor = self._predictor
        if predictor is not None:
            predictor.stop()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_alive

    def poll(self) -> list:
        """Everything reported since the last call (call on the GUI thread)."""
        items = []
        while True:
            try:
                items.append(self._events.get_nowait())
            except queue.Empty:
                return items

    def _post(self, item) -> None:
        self._events.put(item)

    def _main(self) -> None:
        reason = "done"
        try:
            if self.threads:
                import torch

                torch.set_num_threads(int(self.threads))
            self._work()
            if self._stop.is_set():
                reason = "stopped"
        except GeosegError as err:
            reason = "error"
            self._post(Message("error", str(err), err.option))
        except Exception as err:  # a bug or a resource problem: say it in words, log the details
            reason = "error"
            logger.debug("background work failed", exc_info=True)
            text = str(err).splitlines()[0] if str(err) else ""
            self._post(Message("error", f"{self.failure}: {type(err).__name__}: {text}"))
        finally:
            self.prediction_progress = None
            self._post(Finished(reason))

    failure = "background work failed"

    def _work(self) -> None:
        raise NotImplementedError

    def _on_block(self, done: int, total: int) -> None:
        self.prediction_progress = (done, total)

    def _predict_whole(self, predictor, generation: int, final: bool, flattened_depth=None,
                       stale: Callable[[], bool] = lambda: False) -> bool:
        """Predict the whole image and post it; False if cancelled or ``stale()`` first.

        Images of more than :attr:`chunk` ** ndim output voxels are predicted and posted
        chunk by chunk (``Predictor.predict(output=...)``, equal to the whole at once), so
        that memory holds one chunk's probabilities, not the whole image's.
        """
        from . import PredictionCancelled
        from .blockwise import chunk_boxes

        shape = predictor.output_shape(tuple(self.image.shape))
        side = self.chunk
        boxes: list = ([None] if not side or math.prod(shape) <= side ** len(shape)
                       else chunk_boxes(shape, (side,) * len(shape)))
        masked = 0
        try:
            for index, box in enumerate(boxes):
                if self._stop.is_set() or stale():
                    return False
                self.prediction_progress = (index, len(boxes)) if box is not None else (0, 0)
                result = predictor.predict(self.image, progress=self._on_block if box is None else None,
                                           output=box, flattened_depth=flattened_depth)
                if stale():
                    return False
                masked += result.masked
                last = index == len(boxes) - 1
                self._post(PredictionUpdate(generation, box, result, final and last,
                                            part=None if box is None else (index, len(boxes)),
                                            masked=masked if last else 0))
        except PredictionCancelled:
            return False
        finally:
            self.prediction_progress = None
        return True


class LiveSession(_Background):
    """Train on engine-ordered arrays in a thread, predicting as the model improves.

    Parameters
    ----------
    image : array
        The image in the engine's axis order (read only; a lazy array is read by blocks
        when predicting).
    labels : np.ndarray
        A copy of the user's labels in the engine's order; never written to.
    preset : str or Preset
    iterations, block : int, optional
        Iterations of each training run (a run restarts from the current weights when
        the labels change) and training block side; the preset's when omitted.
    device : str
    model : Model, optional
        Continue from this model instead of building a new one.
    class_names : mapping of int to str, optional
        Name of each label value.
    mode : str, optional
        "volume", "spectral" or "image"; inferred from the shapes if omitted.
    live : bool
        After the iterations, wait for new labels and train again (True), or end.
    threads : int, optional
        torch threads in the process (process-wide); :func:`default_threads` leaves a
        core to the GUI.
    schedule : PredictionSchedule, optional
    chunk : int, optional
        Predict the whole image in chunks of this side, posted one by one (large images:
        memory for one chunk's probabilities); None predicts it in one piece.
    """

    name = "geoseg-training"
    failure = "training stopped"

    def __init__(self, image, labels: np.ndarray, *, preset="fast", iterations: Optional[int] = None,
                 block: Optional[int] = None, device: str = "cpu", model=None,
                 class_names: Optional[Mapping[int, str]] = None, mode: Optional[str] = None,
                 live: bool = True, seed: int = 0, threads: Optional[int] = None,
                 schedule: Optional[PredictionSchedule] = None, ordered_units: bool = False,
                 chunk: Optional[int] = None) -> None:
        super().__init__(threads, chunk)
        self.image = image
        self.ordered_units = ordered_units
        self.preset, self.iterations, self.block, self.device = preset, iterations, block, device
        self.mode, self.live, self.seed = mode, live, seed
        self.class_names = dict(class_names or {})
        self.schedule = schedule or PredictionSchedule()
        self._lock = threading.Condition()
        self._labels: np.ndarray = labels
        self._generation = 0
        self._taken = -1
        self._focus: Point = None
        self._focus_moved = False
        self._model = model
        self._trainer = None
        self._flattened_depth = None  # the first trainer's, reused by later trainers and every prediction
        self.step = 0

    # -- called from the GUI thread --------------------------------------------------
    @property
    def generation(self) -> int:
        """The generation of the newest labels handed over."""
        return self._generation

    def update_labels(self, labels: np.ndarray) -> int:
        """Train on this copy of the labels from the next iteration on; returns its generation."""
        with self._lock:
            self._labels = labels
            self._generation += 1
            self._lock.notify_all()
            generation = self._generation
        predictor = self._predictor
        if predictor is not None:
            predictor.stop()  # whatever it was predicting is stale now
        return generation

    def set_focus(self, point: Point) -> None:
        """The slice on screen: per engine spatial axis its index, or None for axes shown whole."""
        point = None if point is None else tuple(None if p is None else int(p) for p in point)
        with self._lock:
            if point != self._focus:
                self._focus, self._focus_moved = point, True

    def stop(self) -> None:
        super().stop()
        trainer = self._trainer
        if trainer is not None:
            trainer.stop()
        with self._lock:
            self._lock.notify_all()

    def latest_model(self):
        """The newest consistent model: the last one predicted with, or the final one.

        Safe to save or apply while training goes on (a copy, never the weights being
        updated).
        """
        return self._model

    # -- the thread ------------------------------------------------------------------
    def _take_labels(self) -> tuple[int, np.ndarray]:
        with self._lock:
            self._taken = self._generation
            return self._generation, self._labels

    def _labels_changed(self) -> bool:
        return self._generation != self._taken

    def _make_trainer(self, labels: np.ndarray, model):
        from . import Trainer
        from .memory import check_memory, training_bytes

        # Only NaN/Inf masking warns here; it is reported as a message below. (The
        # warnings filters are process-wide; this is brief and the GUI does not use them.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = Trainer(self.image, labels, preset=self.preset, mode=self.mode if model is None else None,
                              iterations=self.iterations, block=self.block, seed=self.seed, device=self.device,
                              model=model, flattened_depth=self._flattened_depth)
        # The same check as the command line's, before the first iteration allocates.
        check_memory(training_bytes(trainer), "training")
        names = trainer.model.class_names
        trainer.model.class_names = [self.class_names.get(int(v), n) for v, n in zip(trainer.model.class_ids, names)]
        return trainer

    def _work(self) -> None:
        generation, labels = self._take_labels()
        valid_labels = None
        model = self._model
        while not self._stop.is_set():
            try:
                trainer = self._make_trainer(labels, model)
            except GeosegError as err:
                if valid_labels is None:
                    raise
                self._post(Message("warning", f"the new labels were not used: {err}; training goes on with "
                                              "the previous labels"))
                labels = valid_labels
                continue
            if valid_labels is None and trainer.nonfinite:
                self._post(Message("warning", f"{trainer.nonfinite} NaN or Inf samples in the image are masked "
                                              "out of training and prediction"))
            valid_labels = labels
            self._trainer = trainer
            self._flattened_depth = trainer.flattened_depth
            if self._stop.is_set():
                trainer.stop()
            self.schedule.start_generation()
            predicted_last = self._train(trainer, generation)
            model = trainer.model
            if self._stop.is_set():
                break
            if self._labels_changed():
                generation, labels = self._take_labels()
                continue
            # The run is complete: show the final model everywhere, then wait for strokes.
            if not predicted_last:
                self._predict(model, None, generation, final=True)
            if not self.live:
                break
            with self._lock:
                while not self._stop.is_set() and not self._labels_changed():
                    self._lock.wait(0.5)
            generation, labels = self._take_labels()
        self._model = model
        self._trainer = None

    def _train(self, trainer, generation: int) -> bool:
        """One training run; True if the last thing done was a prediction of the whole image."""
        from . import TrainingDiverged

        predicted_whole = False
        try:
            for progress in trainer.run():
                self.step += 1
                self._post(TrainingUpdate(generation, self.step, progress))
                predicted_whole = False
                if self._stop.is_set() or self._labels_changed():
                    break
                with self._lock:
                    point, moved = self._focus, self._focus_moved
                    self._focus_moved = False
                spatial = tuple(self.image.shape[:trainer.layout.spatial_ndim])
                focus = focus_box(point, spatial, 2 * trainer.model.net.input_multiple, trainer.layout.mode)
                kind = self.schedule.due(time.perf_counter(), focus is not None, moved and focus is not None)
                if kind is not None:
                    region = focus if kind == "focus" else None
                    self._predict(trainer.model, region, generation)
                    predicted_whole = region is None
                if self._stop.is_set() or self._labels_changed():
                    break
        except TrainingDiverged:
            self._model = trainer.model  # the last good weights, for saving
            raise
        return predicted_whole

    def _predict(self, model, region: Region, generation: int, final: bool = False) -> None:
        from . import PredictionCancelled, Predictor

        snapshot = copy.deepcopy(model)
        self._model = snapshot
        # Previews skip the flip averaging (four times the work); the last one keeps it.
        predictor = Predictor(snapshot, device=self.device, flips=final, ordered_units=self.ordered_units)
        self._predictor = predictor
        if self._stop.is_set() or self._labels_changed():
            return
        started = time.perf_counter()
        if region is None:
            stale = lambda: generation != self._generation  # noqa: E731
            done = self._predict_whole(predictor, generation, final, self._flattened_depth, stale)
            self._predictor = None
            if done:
                self.schedule.record("full", started, time.perf_counter())
            return
        try:
            result = predictor.predict(self.image, region=region, flattened_depth=self._flattened_depth)
        except PredictionCancelled:
            return
        finally:
            self._predictor = None
        self.schedule.record("focus", started, time.perf_counter())
        if generation == self._generation:
            self._post(PredictionUpdate(generation, region, result, final))


class PredictionJob(_Background):
    """Apply a model to a whole engine-ordered image in a thread (the widget's Apply)."""

    name = "geoseg-prediction"
    failure = "prediction stopped"

    def __init__(self, model, image, device: str = "cpu", threads: Optional[int] = None,
                 ordered_units: bool = False, chunk: Optional[int] = None) -> None:
        super().__init__(threads, chunk)
        self.model, self.image, self.device = model, image, device
        self.ordered_units = ordered_units

    def _work(self) -> None:
        from . import Predictor
        from .flattening import flattened_depth_of
        from .memory import check_memory, prediction_bytes

        predictor = Predictor(self.model, device=self.device, ordered_units=self.ordered_units)
        layout = predictor.check_image(tuple(self.image.shape))
        if not self.chunk:  # chunked: the outputs go to disk, a chunk at a time
            itemsize = np.dtype(getattr(self.image, "dtype", np.float32)).itemsize
            check_memory(prediction_bytes(predictor, tuple(self.image.shape), itemsize), "prediction")
        self._predictor = predictor
        flattened = None
        if self.chunk and self.model.layout.flattened and layout.mode == "volume":
            # Computed once for all the chunks, not once per chunk.
            flattened = flattened_depth_of(self.image, self.model.center, self.model.scale)
        self._predict_whole(predictor, 0, True, flattened)


class WarmUp(threading.Thread):
    """The thread of :func:`warm_up`; :attr:`devices` is set once torch is imported."""

    devices: Optional[list[str]] = None


def warm_up() -> WarmUp:
    """Import torch, list its devices (:attr:`WarmUp.devices`), then train and predict once
    on a tiny volume, in a daemon thread; return the thread.

    Importing torch, and the first iteration in a process (which imports what torch
    loads lazily and sets up its kernels), hold Python's GIL for stretches that pause the
    GUI: in a thread, the GUI runs between them instead of waiting for all of it. The
    widget calls this when it opens, so that this happens before the user paints and
    trains, not during.
    """

    def run() -> None:
        try:
            from .devices import available_devices

            thread.devices = available_devices()
            from ..data import synthetic_seismic
            from . import Predictor, Trainer

            volume = synthetic_seismic((16, 16, 16), n_boreholes=2, seed=0)
            trainer = Trainer(volume.image, volume.labels, iterations=2, block=16, validate_every=1)
            Predictor(trainer.train()).predict(volume.image, region=(slice(0, 8),))
        except Exception:  # only a head start: training itself reports real problems
            logger.debug("warm-up failed", exc_info=True)

    thread = WarmUp(target=run, name="geoseg-warm-up", daemon=True)
    thread.start()
    return thread


def rename_classes(model, names: Mapping[int, str]):
    """A shallow copy of ``model`` whose classes carry the names the user gave them."""
    renamed = [names.get(int(v), n) for v, n in zip(model.class_ids, model.class_names)]
    return dataclasses.replace(model, class_names=renamed)

