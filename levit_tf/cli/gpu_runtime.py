"""``levit-tf gpu-runtime``: fetch Mesa's software Vulkan (lavapipe) for --accelerator gpu."""

from __future__ import annotations

import argparse

from levit_tf.cli.errors import UserError


def cmd_gpu_runtime(args: argparse.Namespace) -> None:
    from levit_tf.tflite.devices import lavapipe

    try:
        found = lavapipe.prepare()
    except lavapipe.LavapipeError as err:
        raise UserError(str(err)) from None
    print(f"lavapipe (Mesa {found.mesa_version}) ready in {found.root.parent}; "
          "--accelerator gpu uses it when the system has no Vulkan loader. Other programs: "
          f"VK_DRIVER_FILES={found.icd} LD_LIBRARY_PATH={found.loader.parent}")


def add_parser(verbs: argparse._SubParsersAction) -> None:
    gpu = verbs.add_parser(
        "gpu-runtime", help="fetch Mesa's software Vulkan (lavapipe) for --accelerator gpu",
        description="Fetches Debian bookworm-backports' mesa-vulkan-drivers (Mesa >= 25) and "
                    "libvulkan1 through a private apt folder and unpacks them into "
                    "~/.cache/levit-tf/lavapipe; the system's Mesa is not changed. "
                    "--accelerator gpu then runs LiteRT's GPU accelerator on it.")
    gpu.set_defaults(handler=cmd_gpu_runtime)
