"""Shared pytest setup: quiet TF logs, torchvision importable beside CPU torch."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from levit_tf.testing.torch_compat import make_torchvision_importable

make_torchvision_importable()
