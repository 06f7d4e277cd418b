"""Training, prediction and model files (torch and numpy; no napari).

The names below are imported on first use (PEP 562), so that torch-free parts such as
:mod:`.presets`, :mod:`.layout` and :mod:`.devices` can be imported by the napari plugin
without importing torch, which makes napari start slowly.
"""

from __future__ import annotations

import importlib

_MODULE_OF = {
    "FlattenedDepth": "flattening",
    "Layout": "layout", "MODES": "layout", "infer_mode": "layout",
    "Model": "model",
    "ordered_argmax": "ordering",
    "Prediction": "predictor", "PredictionCancelled": "predictor", "Predictor": "predictor",
    "PRESETS": "presets", "Preset": "presets", "get_preset": "presets", "live_defaults": "presets",
    "Progress": "trainer", "Trainer": "trainer", "TrainingDiverged": "trainer",
    "available_devices": "devices", "resolve_device": "devices",
    "check_memory": "memory",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
