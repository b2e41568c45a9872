"""Benchmarks of levit-tf against its peers, run from the repository root as modules:
``python -m benchmarks.speed`` (benchmarks/README.md lists them and what each measured). Timing
helpers are shared in ``benchmarks.timing``; the randomized PyTorch references come from
``levit_tf.testing`` (a source checkout with the ``test`` extra)."""
