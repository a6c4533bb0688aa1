"""Video models by name. Importing this package registers every builder."""

from vidsparse.models import resnet3d  # noqa: F401  (registers the models)
from vidsparse.models.registry import MODELS, create_model, list_models, register_model

__all__ = ["MODELS", "create_model", "list_models", "register_model"]
