"""``cvray tune``: hyperparameter search over ``train.*`` with Ray Tune (see docs/tune.md)."""
from cvray.tune.config import TuneConfig
from cvray.tune.workflow import TuneInputs, prepare_tune, run_tune

__all__ = ["TuneConfig", "TuneInputs", "prepare_tune", "run_tune"]
