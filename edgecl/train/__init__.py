"""The host side of edgecl, in torch: quantizers, binarized layers, embedding binarizers,
backbones, checkpoints, BayesBiNN, the training loop, and the base-training recipe of
``edgecl train`` and the demo (:mod:`edgecl.train.recipes`). The research baselines
(BinPlay, DGM) live in :mod:`edgecl.train.baselines`.

Import it explicitly (``import edgecl.train``); ``import edgecl`` never imports torch.
"""

from edgecl.train.backbones import BACKBONES, BinaryNet, build_model, mlp, mnist_bnn, vgg_small
from edgecl.train.bayesbinn import BayesBiNN, binary_parameters, predict_mean
from edgecl.train.binarizers import (
    HeavisideBinarizer,
    ThermometerBinarizer,
    ThermometerEncoder,
    heaviside,
    set_thermometer_phase,
)
from edgecl.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from edgecl.train.dataset import ArrayDataset, images_to_tensor, remap_labels
from edgecl.train.layers import Normalize, QuantConv2d, QuantLinear, clip_weights_
from edgecl.train.loop import History, evaluate, fit, predict_logits
from edgecl.train.quantizers import (
    ApproxSign,
    Identity,
    Quantizer,
    SteSign,
    get_quantizer,
    ste_sign,
)

__all__ = [
    "ArrayDataset",
    "BayesBiNN",
    "History",
    "binary_parameters",
    "evaluate",
    "fit",
    "images_to_tensor",
    "predict_logits",
    "predict_mean",
    "remap_labels",
    "BACKBONES",
    "ApproxSign",
    "BinaryNet",
    "CheckpointError",
    "HeavisideBinarizer",
    "Identity",
    "Normalize",
    "QuantConv2d",
    "QuantLinear",
    "Quantizer",
    "SteSign",
    "ThermometerBinarizer",
    "ThermometerEncoder",
    "build_model",
    "clip_weights_",
    "get_quantizer",
    "heaviside",
    "load_checkpoint",
    "mlp",
    "mnist_bnn",
    "save_checkpoint",
    "set_thermometer_phase",
    "ste_sign",
    "vgg_small",
]
