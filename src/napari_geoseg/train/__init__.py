"""Training, prediction and model files (torch and numpy; no napari)."""

from .flattening import FlattenedDepth
from .layout import MODES, Layout, infer_mode
from .model import Model
from .ordering import ordered_argmax
from .predictor import Prediction, PredictionCancelled, Predictor
from .presets import PRESETS, Preset, get_preset
from .trainer import Progress, Trainer, TrainingDiverged

__all__ = [
    "FlattenedDepth", "Layout", "MODES", "Model", "PRESETS", "Prediction", "PredictionCancelled", "Predictor", "Preset",
    "Progress", "Trainer", "TrainingDiverged", "get_preset", "infer_mode", "ordered_argmax",
]
