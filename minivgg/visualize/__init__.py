"""Seeing inside VGG: gradient pictures computed exactly through the model's own backward.

Simonyan, Vedaldi & Zisserman 2013 ("Deep Inside Convolutional Networks"): saliency
maps (§3) and class-model images (§2); Luo et al. 2016: effective receptive fields;
Zeiler & Fergus 2014: occlusion sensitivity and maximally activating patches;
Springenberg et al. 2015: guided backpropagation; Selvaraju et al. 2017: Grad-CAM;
cs231n "Visualizing what ConvNets learn".
Floor 6: imports only configs, vgg, layers, ops (and matplotlib lazily, in plots).
"""

from .class_model import ClassModel, ClassModels, class_model, class_models
from .features import feature_maps, first_layer_filters
from .gradcam import GradCAM, grad_cam
from .gradients import input_gradient
from .guided import guided_backprop
from .occlusion import occlusion_map
from .patches import TopPatches, top_patches
from .receptive import EffectiveRF, effective_receptive_field, receptive_box
from .saliency import saliency

__all__ = ["input_gradient", "saliency", "guided_backprop", "grad_cam", "GradCAM", "class_model", "ClassModel",
           "class_models", "ClassModels", "effective_receptive_field", "EffectiveRF", "receptive_box",
           "occlusion_map", "feature_maps", "first_layer_filters", "top_patches", "TopPatches"]
