"""The ``levit-tf`` command line: ``main`` (the parser and the exit codes) and one module per
verb. Importing it loads no TensorFlow."""

from levit_tf.cli.app import main

__all__ = ["main"]
