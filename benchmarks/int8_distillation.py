"""Does quantization-aware distillation make the default int8 export agree with float?

    python -m benchmarks.int8_distillation [--work /tmp/int8-fidelity] [--steps 300 600]
        [--fresh-crops 1500 --learning-rate 3e-5]

The task and the fine-tuned LeViT-128S are ``int8_fidelity.py``'s (cached in ``--work``). The
folded model is fine-tuned against its own float logits (MSE, the float model as teacher) on
the training crops while a simulation of the default int8 graph runs in the forward pass:
per-channel symmetric int8 weights, per-tensor int8 activations at every tensor an int8 op
reads or writes (ranges: min/max over the 200 calibration crops, as the converter takes them),
the attention core (QK^T, bias, softmax, AV, Hardswish) in float; straight-through gradients.
The distilled model then goes through the normal ``export(..., "int8")`` and is compared with
the original float model on the held-out crops. The fine-tuned model's "simulated" and
"exported" rows show how close the simulation comes to the converter's real int8 graph (not
the same rounding draw: the converter's ranges differ from plain min/max by up to ~1.5%, and
it rounds a few tensors more, e.g. the last stem convolution before its bias).
``--fresh-crops N`` distills on N new crops per photo instead (from the same training region,
another seed; calibration stays the 200 task crops), to tell over-fitting the task's 1,800
crops from what the simulated int8 error allows. Writes ``--out``/int8_distillation.txt
(``int8_distillation_fresh<N>_lr<rate>.txt`` with ``--fresh-crops``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks import int8_fidelity


class Int8Simulation:
    """The default int8 graph's rounding in TF ops. ``observe`` records activation ranges
    (min/max, as the converter's calibration); ``freeze`` fixes them for training."""

    def __init__(self) -> None:
        self.ranges: dict[str, list[float]] = {}
        self.frozen = False

    def activation(self, x: tf.Tensor, name: str) -> tf.Tensor:
        if not self.frozen:
            low, high = float(tf.reduce_min(x)), float(tf.reduce_max(x))
            known = self.ranges.setdefault(name, [low, high])
            known[0], known[1] = min(known[0], low), max(known[1], high)
        low, high = self.ranges[name]
        return tf.quantization.fake_quant_with_min_max_args(x, min=low, max=high, num_bits=8)

    @staticmethod
    def weight(kernel: tf.Variable) -> tf.Tensor:
        """Per output channel (the last axis), symmetric, [-127, 127]."""
        axes = list(range(len(kernel.shape) - 1))
        bound = tf.maximum(tf.reduce_max(tf.abs(kernel), axis=axes), 1e-12)
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(
            kernel, -bound, bound, num_bits=8, narrow_range=True)


def _dense(layer, x: tf.Tensor, sim: Int8Simulation) -> tf.Tensor:
    return tf.matmul(x, sim.weight(layer.kernel)) + layer.bias


def simulated_logits(model, pixel_values: tf.Tensor, sim: Int8Simulation) -> tf.Tensor:
    """``LevitForInference`` (normalized input, with head) as its default int8 export computes
    it: (B, H, W, 3) -> (B, num_labels)."""
    from keras import ops

    from levit_tf.models.levit.inference import FoldedMLP
    from levit_tf.models.levit.layers import key_softmax

    x = sim.activation(pixel_values, "input")
    for i, (pad, conv) in enumerate(zip(model.stem_pads, model.stem_convs, strict=True)):
        if i:
            x = sim.activation(ops.hard_swish(x), f"stem_{i}_hard_swish")
        x = tf.nn.conv2d(pad(x), sim.weight(conv.kernel), conv.strides, "VALID") + conv.bias
        x = sim.activation(x, f"stem_{i}")
    x = tf.reshape(x, (-1, x.shape[-1]))
    for block in model.blocks:
        name = block.name
        if isinstance(block, FoldedMLP):
            hidden = sim.activation(_dense(block.linear_up, x, sim), f"{name}_up")
            hidden = sim.activation(ops.hard_swish(hidden), f"{name}_hard_swish")
            out = sim.activation(_dense(block.linear_down, hidden, sim), f"{name}_down")
            x = sim.activation(x + out, f"{name}_add")
            continue
        d, v, h = block.key_dim, block.value_dim, block.num_heads
        if block.stride == 1:
            qkv = sim.activation(_dense(block.queries_keys_values, x, sim), f"{name}_qkv")
            qkv = tf.transpose(tf.reshape(qkv, (-1, block.num_keys, h, 2 * d + v)), (0, 2, 1, 3))
            query, key, value = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        else:
            kv = sim.activation(_dense(block.keys_values, x, sim), f"{name}_kv")
            kv = tf.transpose(tf.reshape(kv, (-1, block.num_keys, h, d + v)), (0, 2, 1, 3))
            query = sim.activation(_dense(block.queries, block.subsample(x), sim), f"{name}_q")
            query = tf.transpose(tf.reshape(query, (-1, block.num_queries, h, d)), (0, 2, 1, 3))
            key, value = kv[..., :d], kv[..., d:]
        weights = key_softmax(block.scores(query, key) - block.negated_attention_bias)
        merged = block.merge_heads(tf.matmul(weights, value))
        merged = sim.activation(ops.hard_swish(merged), f"{name}_hard_swish")
        out = sim.activation(_dense(block.projection, merged, sim), f"{name}_projection")
        x = sim.activation(x + out, f"{name}_add") if block.stride == 1 else out
    grid = model.config.stage_grids()[-1]
    pooled = tf.reduce_mean(tf.reshape(x, (-1, grid[0] * grid[1], x.shape[-1])), axis=1)
    return sim.activation(_dense(model.head, sim.activation(pooled, "mean"), sim), "logits")


def calibrated_simulation(model, calibration: np.ndarray, batch: int = 50) -> Int8Simulation:
    """Ranges from ``calibration`` (N, H, W, 3), then frozen."""
    sim = Int8Simulation()
    for start in range(0, len(calibration), batch):
        simulated_logits(model, tf.constant(calibration[start:start + batch]), sim)
    sim.frozen = True
    return sim


def simulate(model, images: np.ndarray, sim: Int8Simulation, batch: int = 100) -> np.ndarray:
    return np.concatenate([simulated_logits(model, tf.constant(images[i:i + batch]), sim).numpy()
                           for i in range(0, len(images), batch)])


def distill(student, teacher, train: np.ndarray, sim: Int8Simulation, steps: int,
            learning_rate: float, batch: int = 64, seed: int = 1) -> list[float]:
    """``steps`` Adam steps on MSE(simulated int8 student logits, float teacher logits) over
    random training batches (half flipped left-right); returns the losses."""
    from tqdm import tqdm

    optimizer = tf.keras.optimizers.Adam(learning_rate)
    variables = student.trainable_variables
    teacher_logits = tf.function(lambda x: teacher(x)["logits"])
    rng = np.random.default_rng(seed)
    losses = []
    for _ in tqdm(range(steps), desc="distilling", unit="step"):
        x = train[rng.integers(0, len(train), batch)]
        flip = rng.random(batch) < 0.5
        x = tf.constant(np.where(flip[:, None, None, None], x[:, :, ::-1], x))
        target = teacher_logits(x)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(simulated_logits(student, x, sim) - target))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        losses.append(float(loss))
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--work", type=Path, default=Path("/tmp/int8-fidelity"))
    parser.add_argument("--epochs", type=int, default=30, help="of the fine-tune (cached)")
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 600])
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--fresh-crops", type=int, default=0,
                        help="distill on this many new training-region crops per photo")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    data = args.work / "crops"
    if not (data / "val").is_dir():
        int8_fidelity.write_crops(data, {"train": 150, "val": 50})
    best = int8_fidelity.finetune(data, args.work / "run", args.epochs)

    from levit_tf.converters import load_pretrained
    from levit_tf.models.levit.inference import optimize_for_inference
    from levit_tf.tflite import export
    from levit_tf.tflite.calibration import calibration_images, normalized_images
    from levit_tf.utils.cpu_features import cpu_model, int8_capability

    model = load_pretrained(str(best))
    teacher = optimize_for_inference(model)
    images, labels, classes = int8_fidelity.heldout(data)
    reference = np.asarray(teacher(images)["logits"])
    source = data / "train"
    if args.fresh_crops:
        fresh = args.work / f"fresh_crops_{args.fresh_crops}"
        if not fresh.is_dir():  # written aside, then renamed: never a partial set
            partial = fresh.with_name(fresh.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            int8_fidelity.write_crops(partial, {"train": args.fresh_crops}, seed=7)
            partial.rename(fresh)
        source = fresh / "train"
    train = np.stack(list(normalized_images(source, (64, 64)).as_numpy_iterator()))
    # the 200 images ``export`` calibrates on, in the same order
    calibration = np.concatenate(calibration_images(data / "train", 200, (64, 64),
                                                    lambda x: x.astype(np.float32)))
    lines = [f"CPU: {cpu_model()}, {int8_capability()}",
             f"held-out: {len(images)} crops of {len(classes)} photos; distilled on {len(train)} "
             f"{'fresh ' if args.fresh_crops else ''}training crops; 200 task training crops "
             f"calibrate; Adam, learning rate {args.learning_rate}, batch 64",
             f"{'model':<34}{'int8 graph':<12}agreement  mse vs float  accuracy"]
    print("\n".join(lines), flush=True)

    def row(name: str, graph: str, logits: np.ndarray) -> None:
        agreement = np.mean(logits.argmax(-1) == reference.argmax(-1))
        lines.append(f"{name:<34}{graph:<12}{agreement:8.1%}  "
                     f"{np.mean((logits - reference) ** 2):12.4f}  "
                     f"{np.mean(logits.argmax(-1) == labels):7.1%}")
        print(lines[-1], flush=True)

    def exported(student, tag: str) -> np.ndarray:
        path = args.work / f"distilled_{tag}.tflite"
        export(student, path, "int8", calibration_data=data / "train", calibration_steps=200)
        return int8_fidelity.predict(path, images)

    row("fine-tuned float", "-", reference)
    row("fine-tuned", "simulated", simulate(teacher, images, calibrated_simulation(teacher,
                                                                                   calibration)))
    row("fine-tuned", "exported", exported(teacher, "0"))
    # the student trains against the ranges of the model it starts from: fixed, as the fake
    # quantization of QAT keeps them; the export re-calibrates on the distilled weights
    done, student = 0, optimize_for_inference(model)
    sim = calibrated_simulation(student, calibration)
    for steps in sorted(args.steps):
        losses = distill(student, teacher, train, sim, steps - done, args.learning_rate,
                         seed=steps)
        lines.append(f"steps {done + 1}-{steps}: training loss (mse, simulated int8 vs float) "
                     f"{np.mean(losses[:20]):.4f} over the first 20, "
                     f"{np.mean(losses[-20:]):.4f} over the last 20")
        print(lines[-1], flush=True)
        done = steps
        row(f"distilled {steps} steps, float", "-", np.asarray(student(images)["logits"]))
        row(f"distilled {steps} steps", "simulated", simulate(student, images, sim))
        row(f"distilled {steps} steps", "exported", exported(student, str(steps)))
    args.out.mkdir(parents=True, exist_ok=True)
    name = (f"int8_distillation_fresh{args.fresh_crops}_lr{args.learning_rate:g}"
            if args.fresh_crops else "int8_distillation")
    (args.out / f"{name}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
