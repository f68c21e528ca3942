"""Training: configuration, data, and the Trainer."""

from .config import TrainConfig as TrainConfig
from .data import SRCropDataset as SRCropDataset
from .trainer import Trainer as Trainer
from .trainer import TrainResult as TrainResult

__all__ = ["SRCropDataset", "TrainConfig", "TrainResult", "Trainer"]
