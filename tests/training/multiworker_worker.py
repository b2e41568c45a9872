"""One process of tests/training/test_multiworker.py (run as a script, not collected).

``worker OUT WEIGHTS MODEL``: a worker of the TF_CONFIG cluster: checks that Keras as released
still fails under MultiWorkerMirroredStrategy in the two documented ways, then runs (resumes)
the fine-tuning through the Python path and saves every variable (model and optimizer) to
WEIGHTS (.npz). ``reference OUT WEIGHTS MODEL``: one process, MirroredStrategy over two logical
CPUs (the same two replicas, each on its half of every global batch), same options.
The options are those of ``ARGS`` in the test (its first phase runs them through the CLI).
"""

from __future__ import annotations

import sys

import numpy as np

EPOCHS, GLOBAL_BATCH, SEED, LR = 2, 64, 3, 3e-3


def check_keras_still_needs_the_fixes(strategy) -> None:
    """Fails (AssertionError) when either Keras bug is gone: then drop the fix."""
    import keras

    from levit_tf.utils.keras_internals import keras_as_released

    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    for undone, message in ((("symbolic_build", "reduce_per_replica"), "PerReplica"),
                            (("reduce_per_replica",), "Invalid reduction dimension 0")):
        with keras_as_released(*undone):
            try:
                model.fit(x, y, batch_size=4, epochs=1, verbose=0)
            except ValueError as err:
                assert message in str(err), f"{undone}: Keras fails otherwise now: {err!r}"
                print(f"KERAS_BUG {undone[0]}: {type(err).__name__}: {message}")
            else:
                raise AssertionError(f"Keras as released no longer fails without {undone}: "
                                     "the fix is not needed any more")


def main(mode: str, out: str, weights: str, model: str) -> None:
    from levit_tf.training.finetune import FinetuneOptions, finetune

    options = FinetuneOptions(model=model, data="digits", epochs=EPOCHS, out=out, image_size=32,
                              batch_size=GLOBAL_BATCH, seed=SEED, augment=False, lr=LR,
                              strategy="multiworker", verbose=0)  # as the run was started
    if mode == "worker":
        from levit_tf.training.distribute import make_strategy
        from levit_tf.utils.keras_internals import multi_worker_fix_applies

        strategy = make_strategy("multiworker")
        assert multi_worker_fix_applies()
        check_keras_still_needs_the_fixes(strategy)
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    import tensorflow as tf

    kind = ("multiworker" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            else type(strategy).__name__)
    print("REPLICAS", strategy.num_replicas_in_sync, kind)
    result = finetune(options, strategy=strategy)
    variables = [*result.model.variables, *result.model.optimizer.variables]
    np.savez(weights, **{f"{i:04d}:{v.path}": np.asarray(v) for i, v in enumerate(variables)})
    print("RESUMED FROM", result.resumed_from, "DONE", result.epochs_done, len(variables))


if __name__ == "__main__":
    main(*sys.argv[1:])
