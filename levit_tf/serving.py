"""Deprecated path: moved to ``levit_tf.export.saved_model`` (levit-tf 0.1.0)."""

from levit_tf.utils.deprecation import alias_module

alias_module(__name__, "levit_tf.export.saved_model")
