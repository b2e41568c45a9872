"""Reference builders shared by tests/ and benchmarks/: randomized PyTorch LeViT references in
every checkpoint layout (``torch_reference``), tiny Keras configs and randomized weights
(``models``), torchvision beside CPU torch (``torch_compat``). Needs the ``test`` extra (torch,
transformers, timm); in a source checkout only: the wheel does not ship this package."""
