"""The content model: sender-view feature extraction (receiver-added headers stripped), the
safe model format (arrays + JSON, never pickle), scoring with explanations, and training.

Heavy dependencies (scikit-learn for training, torch for the comparison model) are imported only
where they are used, so scanning needs numpy alone.
"""

from mailsift.ml.features import FEATURE_VERSION, extract
from mailsift.ml.model import LinearModel, Prediction, load_model, save_model, shipped_model_path
from mailsift.ml.receiver import SenderView, sender_view

__all__ = ["FEATURE_VERSION", "LinearModel", "Prediction", "SenderView", "extract", "load_model",
           "save_model", "sender_view", "shipped_model_path"]
