"""Parity and conversion-time table: every variant x checkpoint layout, randomized weights.

    python -m benchmarks.parity_report [--json out.json] [--out DIR]

For each of the five LeViT variants it builds randomized PyTorch references (HF transformers,
timm ``levit_*`` and ``levit_conv_*``, and a facebookresearch-layout ``.pth``), saves each as
the checkpoint file a user would have, converts it with ``levit_tf.converters.load_pretrained``
(timed: read + layout detection + Keras build + assignment) and reports the max relative logit
error (max |keras - torch| / max |torch|) and the worst per-stage hidden-state error. Writes
the table to ``--out``/parity.txt (default: benchmarks/results/, or its avx512_vnni/ on such CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import safetensors.torch
import torch
from tqdm import tqdm

from levit_tf.converters import load_pretrained
from levit_tf.models.levit.configuration_levit import PRESETS
from levit_tf.testing.torch_reference import (
    hf_model,
    nhwc,
    relative_error,
    save_fb_checkpoint,
    timm_hidden_states,
    timm_model,
)

LAYOUTS = ("hf", "timm", "timm_conv", "fb")


def reference_outputs(layout: str, preset: str, pixels: np.ndarray, directory: Path):
    """(checkpoint path, HF-ordered hidden states, logits) of a randomized reference."""
    if layout in ("hf", "fb"):
        model = hf_model(preset, seed=11)
        with torch.no_grad():
            out = model(torch.from_numpy(pixels), output_hidden_states=True)
        hidden, logits = [h.numpy() for h in out.hidden_states], out.logits.numpy()
        if layout == "hf":
            model.save_pretrained(directory)
            return directory, hidden, logits
        return save_fb_checkpoint(model, directory / "fb.pth"), hidden, logits
    model = timm_model(preset, conv=layout == "timm_conv", seed=12)
    hidden, logits = timm_hidden_states(model, torch.from_numpy(pixels))
    path = directory / "timm.safetensors"
    safetensors.torch.save_file(model.state_dict(), path)
    return path, hidden, logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="folder for parity.txt")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    pixels = np.random.RandomState(0).standard_normal((args.batch, 3, 224, 224)).astype("float32")
    rows = []
    jobs = [(preset, layout) for preset in PRESETS for layout in LAYOUTS]
    for preset, layout in tqdm(jobs, desc="variants x layouts"):
        with tempfile.TemporaryDirectory() as tmp:
            path, hidden, logits = reference_outputs(layout, preset, pixels, Path(tmp))
            start = time.perf_counter()
            model = load_pretrained(path)
            seconds = time.perf_counter() - start
            out = model(nhwc(pixels), output_hidden_states=True)
        rows.append(dict(
            variant=preset, layout=layout, convert_s=round(seconds, 2),
            logits_rel_err=relative_error(np.asarray(out["logits"]), logits),
            hidden_rel_err=max(relative_error(np.asarray(a), b)
                               for a, b in zip(out["hidden_states"], hidden, strict=True))))
    from levit_tf.cpu_features import cpu_flags, cpu_model, int8_capability

    lines = [f"CPU: {cpu_model()}, {int8_capability()}; {os.cpu_count()} cores",
             f"batch {args.batch}, random N(0,1) pixels, every weight and BN statistic "
             "randomized; error = max|keras - torch| / max|torch|",
             f"{'variant':<12}{'layout':<11}{'logits rel err':>16}{'hidden rel err':>16}"
             f"{'convert s':>11}"]
    lines += [f"{row['variant']:<12}{row['layout']:<11}{row['logits_rel_err']:>16.2e}"
              f"{row['hidden_rel_err']:>16.2e}{row['convert_s']:>11.2f}" for row in rows]
    print("\n" + "\n".join(lines))
    # results/ holds the AVX2 figures, results/avx512_vnni/ those of VNNI CPUs
    results = Path(__file__).resolve().parent / "results"
    out = args.out or (results / "avx512_vnni" if "avx512_vnni" in cpu_flags() else results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "parity.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'parity.txt'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
