"""Every TFLite export on emulated aarch64 CPUs (qemu-user + the aarch64 LiteRT wheel's XNNPACK).

CI prepares the runtime from scratch (``levit_tf.tflite.devices.arm.runtime.prepare``, cached in
``$XDG_CACHE_HOME/levit-tf/arm``), then runs every quantization mode of a small LeViT and an
int8 LeViT-128S at 224 px on the cortex-a53, cortex-a76 and i8mm (cortex-a710)
profiles, on real photos (skimage.data). Each run must keep x86's XNNPACK partitions and builtin
ops (a silent fallback to the builtin kernels fails), stay within the bounds against x86
(``levit_tf.tflite.devices.arm.verify``), agree on top-1 with x86, and execute the ARM kernel
families its CPU offers (cortex-a76: fp16 FMLA for float16, SDOT for int8; i8mm: SMMLA for int8).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.testing.models import SMALL, randomize
from levit_tf.tflite.devices.arm import PROFILES, kernels, parse_profiles
from levit_tf.tflite.devices.arm.op_replay import OpDiff, Replay, _replay_failures
from levit_tf.tflite.devices.arm.verify import ArmRun, _failures, _top1_ok

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "immunohistochemistry",
          "hubble_deep_field", "retina", "colorwheel", "coins", "camera", "moon", "clock")
HELD_OUT = 8  # photos compared (the first 8); all of them calibrate int8 / int16x8
HELD_OUT_224 = 4  # LeViT-128S: ~5 s of emulated CPU per image and profile
# name -> (quantization, float ops): "int8" is the default export (the attention core in float,
# so XNNPACK runs every op), "int8-all" quantizes every op (BATCH_MATMUL, SOFTMAX and HARD_SWISH
# on builtin int8 kernels).
SMALL_MODES = ("float32", "float16", "dynamic", "int8", "int8-all", "int16x8")

# Words assembled by GNU as 2.40 (binutils-aarch64-linux-gnu, -march=armv9-a+sme+i8mm+fp16+
# dotprod) and disassembled back by objdump: the masks must agree with an independent assembler.
ASSEMBLED = {
    0x4E420C20: "fp16 FMLA",  # fmla v0.8h, v1.8h, v2.8h
    0x0F351083: "fp16 FMLA",  # fmla v3.4h, v4.4h, v5.h[3]
    0x4E22CC20: None,         # fmla v0.4s, v1.4s, v2.4s (fp32)
    0x4FA21020: None,         # fmla v0.4s, v1.4s, v2.s[1] (fp32)
    0x4E829420: "SDOT",       # sdot v0.4s, v1.16b, v2.16b
    0x0FA2E820: "SDOT",       # sdot v0.2s, v1.8b, v2.4b[3]
    0x6E829420: "UDOT",       # udot v0.4s, v1.16b, v2.16b
    0x4E82A420: "SMMLA",      # smmla v0.4s, v1.16b, v2.16b
    0x6E82A420: None,         # ummla (not counted)
    0x4E82AC20: "USMMLA",     # usmmla v0.4s, v1.16b, v2.16b
    0xA540A000: "SVE",        # ld1w {z0.s}, p0/z, [x0]
    0x65A20020: "SVE",        # fmla z0.s, p0/m, z1.s, z2.s
    0x44820020: "SVE",        # sdot z0.s, z1.b, z2.b
    0x80812000: "SME",        # fmopa za0.s, p0/m, p1/m, z0.s, z1.s
    0xA0812000: "SME",        # smopa za0.s, p0/m, p1/m, z0.b, z1.b
    0xE09F0000: "SME",        # ld1w {za0h.s[w12, 0]}, p0/z, [x0, xzr, lsl #2]
    0xD503477F: "SME",        # smstart
    0x4EA29C20: None,         # mul v0.4s, v1.4s, v2.4s
    0x6E421C20: None,         # fmul v0.8h, v1.8h, v2.8h (fp16, but not FMLA)
    0x3DC00000: None,         # ldr q0, [x0]
}


def test_kernel_masks_match_the_assembler():
    assert {hex(w): kernels.classify(w) for w in ASSEMBLED} == {
        hex(w): f for w, f in ASSEMBLED.items()}


def test_count_log_reads_raw_words_not_mnemonics(tmp_path):
    log = tmp_path / "in_asm.log"
    log.write_text("----------------\nIN: \n"
                   "0x0000555555550000:  4e829420  .byte 0x20, 0x94, 0x82, 0x4e\n"
                   "0x0000555555550004:  4e82a420  smmla v0.4s, v1.16b, v2.16b\n"
                   "0x0000555555550008:  d503201f  nop\n\nOUT: [size=4]\n")
    assert kernels.count_log(log) == Counter({"SDOT": 1, "SMMLA": 1})


def test_profiles():
    assert [p.cpu for p in parse_profiles("cortex-a53, cortex-a76,i8mm")] == [
        "cortex-a53", "cortex-a76", "cortex-a710"]
    with pytest.raises(ValueError, match=r"unknown ARM profile.*neoverse-v9"):
        parse_profiles("cortex-a53,neoverse-v9")


def _run(**changes) -> ArmRun:
    fields = dict(path="m.tflite", quantization="int8", profile="cortex-a76", cpu="cortex-a76",
                  partitions=3, x86_partitions=3, builtin_ops={}, x86_builtin_ops={},
                  max_diff_x86=0.0, relative_diff_x86=0.0, bound=0.1, bound_rule="1 step",
                  top1_x86=1.0, top1_ok=True,
                  max_diff_keras=0.1, top1_keras=1.0, x86_top1_keras=1.0,
                  families={"SDOT": 10}, expected=("SDOT",), forbidden=("SMMLA",))
    return ArmRun(**{**fields, **changes})


@pytest.mark.parametrize("changes, message", [
    ({}, None),
    ({"partitions": 0, "builtin_ops": {"FULLY_CONNECTED": 3}}, "0 XNNPACK partitions"),
    ({"partitions": 2}, "2 XNNPACK partitions"),
    ({"builtin_ops": {"SOFTMAX": 1}}, "builtin kernels"),
    ({"max_diff_x86": 0.2}, "max |diff| vs x86"),
    ({"top1_x86": 0.875, "top1_ok": False}, "top-1 vs x86"),
    ({"families": {}}, "no SDOT executed"),
    ({"families": {"SDOT": 1, "SMMLA": 4}}, "SMMLA executed on a CPU without it"),
    ({"replay": Replay("cortex-a76", [], True, ["integer ops differ from x86: ADD #3"])},
     "op replay: integer ops differ"),
])
def test_silent_fallbacks_fail(changes, message):
    failures = _failures(_run(**changes))
    assert (failures == []) if message is None else any(message in f for f in failures)


def _ops(*changes) -> list[OpDiff]:
    ops = [OpDiff(0, "FULLY_CONNECTED", "int8", 0.0, 0, 64, True),
           OpDiff(1, "SOFTMAX", "float32", 3e-7, 40, 64, True),
           OpDiff(2, "QUANTIZE", "int8", 0.0, 0, 64, True)]
    for number, field, value in changes:
        setattr(ops[number], field, value)
    return ops


@pytest.mark.parametrize("changes, consistent, moved, message", [
    ((), True, False, None),
    (((2, "max_diff", 1.0),), True, False, "integer ops differ from x86: QUANTIZE #2 (1 steps)"),
    (((1, "max_diff", 2e-5),), True, False, "float ops beyond 1e-05 relative: SOFTMAX #1"),
    ((), False, False, "do not reproduce the x86 graph"),
    ((), True, True, "XNNPACK took different ops on ARM: FULLY_CONNECTED"),
])
def test_op_replay_failures(changes, consistent, moved, message):
    ops = _ops(*changes)
    x86 = {str(o.number): True for o in ops}
    arm = {**x86, "0": not moved}
    failures = _replay_failures(Replay("i8mm", ops, consistent), x86, arm)
    assert (failures == []) if message is None else any(message in f for f in failures)


def test_top1_near_tie_rule():
    keras = np.array([[10.0, 9.9, 0.0], [10.0, 5.0, 0.0]])
    x86 = np.array([[10.5, 9.5, 0.0], [10.5, 5.5, 0.0]])  # error 0.5 per image
    assert _top1_ok(np.array([[9.0, 9.8, 0.0], [9.0, 1.0, 0.0]]), x86, keras)  # tie: either
    assert not _top1_ok(np.array([[9.0, 9.0, 9.9], [9.0, 1.0, 0.0]]), x86, keras)  # not top-2
    assert not _top1_ok(np.array([[10.0, 9.0, 0.0], [4.0, 9.0, 0.0]]), x86, keras)  # margin 5


# ------------------------------------------------------------------ the models on ARM CPUs


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """The aarch64 runtime; under CI (CI=true) built from scratch in a fresh cache dir."""
    from levit_tf.tflite.devices.arm.runtime import prepare

    start = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        if os.environ.get("CI"):
            patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        prepared = prepare(progress=print)
    print(f"aarch64 runtime ready in {time.perf_counter() - start:.1f} s "
          f"(qemu {'.'.join(map(str, prepared.qemu_version))})")
    return prepared


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for index, name in enumerate(PHOTOS):
        image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        # one subfolder per photo: held-out images are compared in PHOTOS order (a folder's
        # images come in a fixed shuffled order); calibration reads them all
        (folder / f"{index:02d}").mkdir()
        Image.fromarray(image[..., :3]).save(folder / f"{index:02d}" / f"{name}.png")
    return folder


def _images(folder, size: int, count: int) -> np.ndarray:
    from levit_tf.tflite.calibration import normalized_images

    photos = sorted(p for p in Path(folder).iterdir() if p.is_dir())[:count]
    return np.stack([next(normalized_images(str(photo), (size, size)).as_numpy_iterator())
                     for photo in photos])


def _export(model, folder, modes, tmp_path) -> list:
    from levit_tf.tflite import export

    paths = []
    for name in modes:
        mode = name.split("-")[0]
        calibration = str(folder) if mode in ("int8", "int16x8") else None
        float_ops = () if name.endswith("-all") else None  # None: the mode's default
        paths.append(export(model, tmp_path / f"{model.config.image_size}_{name}.tflite", mode,
                            calibration_data=calibration, float_ops=float_ops).path)
    return paths


def _verify(model, folder, modes, runtime, tmp_path, count: int = HELD_OUT):
    from levit_tf.tflite.devices.arm.verify import format_runs, verify_arm

    images = _images(folder, model.config.image_size, count)
    keras_logits = np.asarray(model.predict(images, verbose=0)["logits"])
    paths = _export(model, folder, modes, tmp_path)
    profiles = [PROFILES[p] for p in ("cortex-a53", "cortex-a76", "i8mm")]
    runs = verify_arm(paths, images, profiles, runtime, keras_logits)
    print("\n" + format_runs(runs))
    return runs


def _check(runs: list[ArmRun]) -> None:
    for run in runs:
        label = f"{run.quantization} on {run.profile}"
        assert run.partitions > 0 and run.partitions == run.x86_partitions, label
        assert run.builtin_ops == run.x86_builtin_ops, label
        assert run.max_diff_x86 <= run.bound, (label, run.max_diff_x86, run.bound)
        assert run.top1_ok, label
        float_ops = run.quantization == "int8" and not run.path.endswith("-all.tflite")
        if run.quantization != "dynamic" and not float_ops:  # float ops: see top1_ok's ties
            assert run.top1_x86 == 1.0, label
        for family in run.expected:
            assert run.families.get(family, 0) > 0, (label, family, run.families)
        if float_ops:  # the default int8: every op alone on ARM equals x86's but SOFTMAX
            assert run.bound_rule == "2x x86 quant err" and run.replay is not None, label
            assert run.replay.ok and run.replay.graph_consistent, (label, run.replay.summary())
            assert all(o.delegated for o in run.replay.ops), label
            assert all(o.max_diff == 0 for o in run.replay.ops if o.dtype.startswith("int"))
            assert {o.op for o in run.replay.ops if o.differing} <= {"SOFTMAX"}, label
        elif run.quantization in ("int8", "int16x8") and not run.builtin_ops:
            assert run.bound_rule == "1 step", label  # all in XNNPACK: within one output step
        assert run.ok, (label, run.failures)
    by = {(r.profile, r.quantization): r for r in runs}
    modes = {r.quantization for r in runs}
    # The issue's kernel requirements, spelled out (the profiles' ``expected`` carry them too).
    if "float16" in modes:
        assert by["cortex-a76", "float16"].families.get("fp16 FMLA", 0) > 0
        assert not by["cortex-a53", "float16"].families.get("fp16 FMLA")
    if "int8" in modes:
        assert by["cortex-a76", "int8"].families.get("SDOT", 0) > 0
        assert by["i8mm", "int8"].families.get("SMMLA", 0) > 0
    if "float32" in modes:
        assert by["cortex-a76", "float32"].relative_diff_x86 <= 1e-4


def test_cli_rejects_unknown_profiles_first(tmp_path, capsys):
    from levit_tf.cli import main

    code = main(["verify", str(tmp_path / "none.keras"), str(tmp_path / "none.tflite"),
                 "--images", str(tmp_path), "--arm", "cortex-a53,pixel"])
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "unknown ARM profile(s) pixel" in error


def test_small_levit_every_mode_on_arm(runtime, photo_dir, tmp_path, capsys):
    from levit_tf.cli import main

    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**SMALL)), seed=11)
    _check(_verify(model, photo_dir, SMALL_MODES, runtime, tmp_path))
    # The CLI on one file (exported above): the table and exit 0 within the bounds.
    model.save(tmp_path / "small.keras")
    capsys.readouterr()
    code = main(["verify", str(tmp_path / "small.keras"), str(tmp_path / "96_int8.tflite"),
                 "--images", str(photo_dir), "--count", "2", "--arm", "cortex-a76"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("96_int8.tflite"))
    assert "cortex-a76" in row and "SDOT x" in row and row.endswith("/ ok")


@pytest.fixture(scope="module")
def levit_128s_runs(runtime, photo_dir, tmp_path_factory) -> list[ArmRun]:
    """LeViT-128S (random weights) at 224 px, the default int8 (attention core in float), on
    4 photos and the three profiles. float16 at 224 px takes minutes per profile under
    emulation, too slow for CI; its kernels are checked above."""
    config = LevitConfig.from_preset("levit-128S", num_labels=100)
    model = randomize(LevitForImageClassificationWithTeacher(config), seed=3)
    return _verify(model, photo_dir, ("int8",), runtime,
                   tmp_path_factory.mktemp("levit128s"), HELD_OUT_224)


def test_levit_128s_224_runs_arm_kernels(levit_128s_runs):
    by = {r.profile: r for r in levit_128s_runs}
    for run in levit_128s_runs:
        assert run.partitions == run.x86_partitions == 1 and not run.builtin_ops, run.profile
        assert not any(run.families.get(f) for f in run.forbidden), run.profile
    assert by["cortex-a76"].families.get("SDOT", 0) > 0
    assert by["i8mm"].families.get("SMMLA", 0) > 0
    # The three ARM CPUs (NEON, SDOT, SMMLA kernels) agree with each other exactly.
    assert len({r.max_diff_x86 for r in levit_128s_runs}) == 1
    assert len({r.max_diff_keras for r in levit_128s_runs}) == 1


def test_levit_128s_224_within_bounds_of_x86(levit_128s_runs):
    """Measured: every op of the file alone on ARM equals x86 from the same activations except
    the float SOFTMAXes (<= 4e-7 relative, XNNPACK's exp differs between ISAs); end to end one
    photo differs by ~17 output steps (a flipped activation carried through a random network)
    while ARM stays as close to Keras as x86 is."""
    _check(levit_128s_runs)
    for run in levit_128s_runs:  # ARM's error against Keras: x86's (bound / 2) within 1.5x
        assert len(run.replay.ops) > 300 and run.max_diff_keras <= 0.75 * run.bound
