"""Training: the founding fine-tuning recipe with progress events and cancel."""
from engine.training.fit import DataReady, EpochReport, StepReport, TrainConfig, TrainResult, fit, train

__all__ = ["DataReady", "EpochReport", "StepReport", "TrainConfig", "TrainResult", "fit", "train"]
