"""Seeing inside VGG: gradient pictures computed exactly through the model's own backward.

Simonyan, Vedaldi & Zisserman 2013 ("Deep Inside Convolutional Networks"): saliency
maps (§3) and class-model images (§2); Luo et al. 2016: effective receptive fields;
Zeiler & Fergus 2014: occlusion sensitivity; cs231n "Visualizing what ConvNets learn".
Floor 6: imports only configs, vgg, layers, ops (and matplotlib lazily, in plots).
"""

from .class_model import ClassModel, class_model
from .features import feature_maps, first_layer_filters
from .gradients import input_gradient
from .occlusion import occlusion_map
from .receptive import EffectiveRF, effective_receptive_field, receptive_box
from .saliency import saliency

__all__ = ["input_gradient", "saliency", "class_model", "ClassModel", "effective_receptive_field",
           "EffectiveRF", "receptive_box", "occlusion_map", "feature_maps", "first_layer_filters"]
