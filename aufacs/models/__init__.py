"""The three AU detectors and the installed plug-ins behind one registry."""

from aufacs.models.base import AUModel, AUOutput, InputSpec
from aufacs.models.contract import ModelCheck, check_model
from aufacs.models.registry import available_models, build_model, model_options

__all__ = [
    "AUModel",
    "AUOutput",
    "InputSpec",
    "ModelCheck",
    "available_models",
    "build_model",
    "check_model",
    "model_options",
]
