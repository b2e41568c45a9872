"""Every python and bash block of README.md and docs/ runs as written, in a fresh process, in a
folder holding what a user would have beforehand (tests/support/doc_blocks.py: the markers).

The folder (built once): an HF hub cache holding ``facebook/levit-128S`` (random weights; the
blocks run with ``HF_HUB_OFFLINE=1``), the same checkpoint as an HF directory, a timm
``.safetensors`` and a facebookresearch ``.pth``, ``levit-128S.keras`` converted from it, real
photos (``cat.jpg``, ``photos/``, ``my_photos/<class>/``). Each block gets its own copy
(hard links: every levit-tf output is written to a new file and renamed), so blocks are
independent and any one can be run alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.doc_blocks import Block, code_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [block for page in PAGES if page.is_file() for block in code_blocks(page)]
HUB_REVISION = "0123456789abcdef0123456789abcdef01234567"
CLASSES = ("cat", "coffee")


def _photos(folder: Path) -> None:
    """Real photos from scikit-image / scikit-learn as JPEG files."""
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(0)
    sources = {"cat": data.chelsea(), "coffee": data.coffee(), "astronaut": data.astronaut(),
               "rocket": data.rocket(), **{f"sample{i}": image for i, image in
                                            enumerate(load_sample_images().images)}}
    Image.fromarray(data.chelsea()).save(folder / "cat.jpg", quality=92)
    (folder / "photos").mkdir()
    for name, image in sources.items():
        for k in range(3):  # random square crops: 18 images
            h, w = image.shape[:2]
            side = int(min(h, w) * rng.uniform(0.5, 0.9))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            Image.fromarray(image[y:y + side, x:x + side]).save(
                folder / "photos" / f"{name}_{k}.jpg", quality=92)
    for label in CLASSES:
        (folder / "my_photos" / label).mkdir(parents=True)
        for k in range(8):
            image = sources[label]
            h, w = image.shape[:2]
            side = int(min(h, w) * rng.uniform(0.4, 0.9))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            Image.fromarray(image[y:y + side, x:x + side]).save(
                folder / "my_photos" / label / f"{k}.jpg", quality=92)


def _checkpoints(folder: Path) -> None:
    """LeViT-128S with random weights in every layout the docs name, and converted once."""
    import torch
    from safetensors.torch import save_file

    from levit_tf.converters import convert_to_file
    from levit_tf.testing.torch_reference import hf_model, save_fb_checkpoint, timm_model

    hf = hf_model("levit-128S", seed=7)
    hf.save_pretrained(folder / "levit-128S")
    from transformers import LevitImageProcessor

    LevitImageProcessor().save_pretrained(folder / "levit-128S")
    snapshot = folder / "hub" / "models--facebook--levit-128S" / "snapshots" / HUB_REVISION
    shutil.copytree(folder / "levit-128S", snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(HUB_REVISION)
    timm = timm_model("levit-128S", seed=8)
    save_file({k: v.contiguous() for k, v in timm.state_dict().items()},
              folder / "levit_128s.fb_dist_in1k.safetensors")
    save_fb_checkpoint(hf, folder / "LeViT-128S-model.pth")
    with torch.no_grad():
        convert_to_file(folder / "levit-128S", folder / "levit-128S.keras")


@pytest.fixture(scope="session")
def user_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("docs-inputs")
    _photos(folder)
    _checkpoints(folder)
    return folder


def block_environment(folder: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
            "HF_HUB_CACHE": str(folder / "hub"), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
            "PYTHONWARNINGS": "ignore"}


def run_block(block: Block, folder: Path) -> subprocess.CompletedProcess:
    if block.language == "python":
        script = folder / "block.py"
        script.write_text(block.code)
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    return subprocess.run(command, cwd=folder, env=block_environment(folder),
                          capture_output=True, text=True, timeout=900)


#: Commands that change the machine a block runs on: a block holding one must be marked skip
#: (the doc test runs blocks in the test environment itself).
CHANGES_THE_MACHINE = re.compile(r"\b(pip3?|apt-get|apt|conda|uv)\s+(install|uninstall|remove)\b")


def test_the_docs_have_blocks_and_every_skip_says_why():
    assert BLOCKS, "no code blocks found"
    for block in BLOCKS:
        assert block.skip is None or len(block.skip) > 10, block.id
        if block.skip is None:
            assert not CHANGES_THE_MACHINE.search(block.code), (
                f"{block.id} installs or removes packages: mark it 'docs-test: skip REASON'")


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_code_block_runs(block: Block, user_folder: Path, tmp_path: Path):
    if block.skip:
        pytest.skip(block.skip)
    folder = tmp_path / "user"
    shutil.copytree(user_folder, folder, copy_function=os.link)
    done = run_block(block, folder)
    assert done.returncode == 0, (
        f"{block.id} ({block.language}) exited {done.returncode}\n--- code\n{block.code}"
        f"--- stdout (end)\n{done.stdout[-2500:]}\n--- stderr (end)\n{done.stderr[-4000:]}")
