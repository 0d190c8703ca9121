"""Model backends behind one interface (:func:`build_model`); see :mod:`cvray.models.base`."""
import cvray.config  # noqa: F401  (compose ExperimentConfig before our section imports it)
from cvray.models.base import BACKENDS, Backend, BackendUnavailable, build_model, get_backend
from cvray.models.config import ModelConfig
from cvray.models.weights import LoadReport, WeightsError, load_into, read_state_dict

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "LoadReport", "ModelConfig", "WeightsError",
           "build_model", "get_backend", "load_into", "read_state_dict"]
