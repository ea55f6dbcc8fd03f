"""Measure the largest logit differences of each interop round trip (the figures in README.md).

Run from the repository root: ``python examples/interop_tolerances.py`` (needs torch, onnx, onnxruntime).
It reuses the test suite's torch models and writers, so it measures exactly what the tests check.
"""
import numpy as np, torch, sys
sys.path.insert(0, "tests")
import test_interop as T, test_onnx as O
from minivgg.io.weights import load_model, convert
from minivgg.io.onnx_export import onnx_model
from minivgg.vgg import VGG
import tempfile, pathlib
d = pathlib.Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
def rep(name, a, b):
    print(f"{name}: max abs {np.abs(a-b).max():.3g}, max rel {(np.abs(a-b)/np.abs(b).max()).max():.3g} (of max |logit| {np.abs(b).max():.3g})")
net = T._randomize(torch, T.timm_vgg(torch), 0)
T.write_safetensors(d/"m.safetensors", {k: v.numpy() for k, v in net.state_dict().items()})
x = rng.standard_normal((3,3,64,64)).astype(np.float32)
with torch.no_grad(): want = net(torch.from_numpy(x)).numpy()
rep("torch -> timm safetensors -> minivgg (VGG-11 w1/8, 64px)", load_model(d/"m.safetensors").forward(x), want)
m = O._small("vgg11", 3); convert_in = d/"w.npz"
from minivgg.io.weights import save_weights
save_weights(convert_in, m.params, m.config); convert(convert_in, d/"o.pth")
tv = T.torchvision_vgg(torch); tv.load_state_dict(torch.load(d/"o.pth", weights_only=True))
with torch.no_grad(): want = tv(torch.from_numpy(x)).numpy()
rep("minivgg -> .pth -> torch (VGG-11 w1/8, 64px)", m.forward(x), want)
for arch in ("vgg11", "vgg16"):
    m = O._small(arch, 3); (d/"m.onnx").write_bytes(onnx_model(m.params, m.config).SerializeToString())
    rep(f"minivgg -> onnx -> onnxruntime ({arch} w1/8, 64px)", m.forward(x), O._ort_logits(d/"m.onnx", x))
m = VGG("vgg16", seed=0); (d/"m.onnx").write_bytes(onnx_model(m.params, m.config).SerializeToString())
x = rng.standard_normal((1,3,224,224)).astype(np.float32)
rep("minivgg -> onnx -> onnxruntime (VGG-16 full, 224px)", m.forward(x), O._ort_logits(d/"m.onnx", x))
