"""verify: builds archcalc specs as PyTorch models and proves every number against PyTorch;
imports nn.Modules as specs and exports specs as PyTorch code or ONNX."""
