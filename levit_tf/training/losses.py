"""Losses of the training recipe (defined beside the models, in ``levit_tf.losses``)."""

from levit_tf.losses import SparseCrossEntropy

__all__ = ["SparseCrossEntropy"]
