"""Training: plain-torch engine + hooks (no Ray) and a Ray Train adapter (:mod:`.distributed`)."""
import cvray.config  # noqa: F401  (compose ExperimentConfig before our section imports it)
from cvray.train.config import AugmentConfig, LossConfig, OptimConfig, TrainConfig

__all__ = ["AugmentConfig", "LossConfig", "OptimConfig", "TrainConfig", "run_training"]


def run_training(*args, **kwargs):
    """See :func:`cvray.train.workflow.run_training` (imported lazily: it pulls in Ray)."""
    from cvray.train.workflow import run_training as _run

    return _run(*args, **kwargs)
