"""Video models by name. Importing this package registers every builder."""

from vidsparse.models import resnet3d  # noqa: F401  (registers the models)
try:  # torchvision's video models; without torchvision the rest still registers
    from vidsparse.models import torchvision_video  # noqa: F401
except ModuleNotFoundError as exc:
    if exc.name != "torchvision" and not (exc.name or "").startswith("torchvision."):
        raise
from vidsparse.models import pytorchvideo_models  # noqa: F401
from vidsparse.models import transformers  # noqa: F401
from vidsparse.models.registry import (MODELS, ClipSpec, create_model, list_models,
                                       register_model)
from vidsparse.models.scoring import clip_scores

__all__ = ["MODELS", "ClipSpec", "clip_scores", "create_model", "list_models", "register_model"]
