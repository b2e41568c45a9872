"""Converts a timm LeViT to .tflite with litert-torch (runs in the peers venv: `make peers`).

    .venv-peers/bin/python benchmarks/peers/litert_torch_convert.py levit_128s STATE.pt OUT.tflite \
        [--batch 1]

Loads the randomized weights the benchmark saved (every BN gamma non-zero, so the converter
cannot prune branches) and writes litert-torch's TFLite conversion of the same model.
"""

import argparse

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    parser.add_argument("state")
    parser.add_argument("output")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    # timm imports torchvision; see levit_tf/testing/torch_compat.py for why this is needed
    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import litert_torch
    import timm

    model = timm.create_model(args.variant)
    model.load_state_dict(torch.load(args.state, weights_only=True))
    model.eval()
    sample = torch.randn(args.batch, 3, 224, 224)
    with torch.no_grad():
        model(sample)
    litert_torch.convert(model, (sample,)).export(args.output)


if __name__ == "__main__":
    main()
