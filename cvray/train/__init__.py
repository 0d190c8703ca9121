"""Training: plain-torch engine + hooks (no Ray) and a Ray Train adapter (:mod:`.distributed`).

The stage's entry point is :func:`cvray.train.workflow.run_train` (``run_train`` and
``TrainInputs`` are also reachable here, imported on first use: the workflow pulls in torch).
"""
import cvray.config  # noqa: F401  (compose ExperimentConfig before our section imports it)
from cvray.train.config import AugmentConfig, LossConfig, OptimConfig, TrainConfig

__all__ = ["AugmentConfig", "LossConfig", "OptimConfig", "TrainConfig", "TrainInputs", "run_train"]


def __getattr__(name: str):
    if name in ("run_train", "TrainInputs"):
        from cvray.train import workflow

        return getattr(workflow, name)
    raise AttributeError(f"module 'cvray.train' has no attribute {name!r}")
