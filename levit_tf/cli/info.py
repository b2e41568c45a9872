"""``levit-tf info``: describe a converted model or a checkpoint."""

from __future__ import annotations

import argparse

from levit_tf.cli.errors import UserError


def cmd_info(args: argparse.Namespace) -> None:
    from levit_tf.converters import ConversionError, load_pretrained

    try:
        model = load_pretrained(args.model)
    except (ConversionError, FileNotFoundError) as err:
        raise UserError(str(err)) from None
    config = model.config
    print(f"{type(model).__name__}: {config.preset_name() or 'custom'} architecture, "
          f"{model.count_params():,} parameters")
    print(f"  input: (batch, {config.image_hw[0]}, {config.image_hw[1]}, "
          f"{config.num_channels}) float32 NHWC")
    print(f"  stages: widths {config.hidden_sizes}, heads {config.num_attention_heads}, "
          f"depths {config.depths}, key dims {config.key_dim}")
    labels = list(config.id2label.values())
    more = ", ..." if len(labels) > 3 else ""
    print(f"  labels: {config.num_labels} ({', '.join(labels[:3])}{more})")


def add_parser(verbs: argparse._SubParsersAction) -> None:
    info = verbs.add_parser("info", help="describe a converted model or checkpoint",
                            epilog="example: levit-tf info levit-128S.keras")
    info.add_argument("model", metavar="MODEL")
    info.set_defaults(handler=cmd_info)
