"""The three AU detectors behind one registry."""

from aufacs.models.base import AUModel, AUOutput, InputSpec
from aufacs.models.registry import available_models, build_model, model_options

__all__ = ["AUModel", "AUOutput", "InputSpec", "available_models", "build_model", "model_options"]
