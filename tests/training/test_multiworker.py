"""MultiWorkerMirroredStrategy for real: two worker processes on 127.0.0.1 fine-tune the tiny
model on the digits at 32 px (2 epochs of 23 steps, global batch 64).

Phase 1: ``levit-tf finetune --strategy multiworker`` on both workers; worker 1 is killed once
the chief has recorded epoch 1, then the chief too (TensorFlow's collectives need every worker:
the cluster restarts, as with Keras's BackupAndRestore). Phase 2: both workers restarted through
the Python path (``finetune(FinetuneOptions(...))``, tests/training/multiworker_worker.py)
resume epoch 2; beside them one process (MirroredStrategy over two logical CPUs: the same two
replicas on the same halves of each global batch) resumes from a copy of the same checkpoint.

Checks: both workers exit 0 and resumed at epoch 2; every variable (model and optimizer) is
bit-identical across the workers and equal, within float32 reduction noise, to the one
process; only the chief wrote ``--out`` (the other's temporary run is gone); and Keras as
released still fails without ``levit_tf.utils.keras_internals.fix_multi_worker_fit`` (the workers
fail this test once it does not).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import keras
import numpy as np
import pytest

from levit_tf import LevitForImageClassification

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("multiworker_worker.py")
TIMEOUT = 600  # seconds per phase (a loaded 2-core box took 7 min); then every process is killed
RUN_FILES = ["best.keras", "curve.png", "last.keras", "log.csv", "state.json"]
#: The options of tests/training/multiworker_worker.py as CLI flags (phase 1).
FLAGS = ["--data", "digits", "--image-size", "32", "--epochs", "2", "--batch-size", "64",
         "--seed", "3", "--lr", "3e-3", "--no-augment", "--strategy", "multiworker"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_config) -> Path:
    path = tmp_path_factory.mktemp("mw") / "tiny.keras"
    keras.utils.set_random_seed(0)
    LevitForImageClassification(tiny_config()).save(path)
    return path


def free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def environment(index: int | None, ports: list[int], tmp: Path) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(
               [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("TF_CONFIG", None)
    if index is not None:
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index}})
        env["TMPDIR"] = str(tmp / f"tmp{index}")  # where a non-chief's temporary run goes
        Path(env["TMPDIR"]).mkdir(exist_ok=True)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, *args], stdout=handle,
                                stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def wait_all(processes: list[subprocess.Popen], logs: list[Path], deadline: float) -> None:
    for process, log in zip(processes, logs, strict=True):
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"timed out; {log.name}: {log.read_text()[-2000:]}")
        assert process.returncode == 0, f"{log.name}: {log.read_text()[-3000:]}"


def kill_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def interrupted_cli_run(model: Path, out: Path, tmp: Path) -> list[int | None]:
    """Phase 1; returns the workers' exit codes (None: killed by the test)."""
    args = ["-m", "levit_tf.cli", "finetune", "--model", str(model), "--out", str(out), *FLAGS]
    ports = free_ports(2)
    logs = [tmp / f"cli{i}.log" for i in range(2)]
    processes: list[subprocess.Popen] = []
    try:
        for i in range(2):
            processes.append(start(args, environment(i, ports, tmp), logs[i]))
        deadline = time.monotonic() + TIMEOUT
        while not (out / "state.json").is_file():  # written atomically after epoch 1
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
            assert all(p.poll() is None for p in processes), [
                log.read_text()[-2000:] for log in logs]
            time.sleep(0.05)
        processes[1].kill()
        processes[1].wait()
        time.sleep(2)
        exits = [p.poll() for p in processes]
    finally:
        kill_all(processes)
    return exits


def worker_dirs(tmp: Path) -> list[list[str]]:
    """The non-chief's temporary run directories, per worker's TMPDIR."""
    return [sorted(p.name for p in (tmp / f"tmp{i}").glob("levit-tf-worker-*")) for i in range(2)]


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("mw")
    out, ref_out = tmp / "out", tmp / "ref-out"
    started = time.monotonic()
    exits = interrupted_cli_run(tiny_model, out, tmp)
    state = json.loads((out / "state.json").read_text())
    files_after_kill = sorted(p.name for p in out.iterdir())
    left_by_kill = worker_dirs(tmp)  # SIGKILL leaves no chance to clean up
    shutil.copytree(out, ref_out)

    ports = free_ports(2)
    names = ["worker0", "worker1", "reference"]
    logs = [tmp / f"{name}.log" for name in names]
    processes: list[subprocess.Popen] = []
    try:
        for i, name in enumerate(names):
            worker = name != "reference"
            args = [str(WORKER), "worker" if worker else "reference",
                    str(out if worker else ref_out), str(tmp / f"{name}.npz"), str(tiny_model)]
            processes.append(start(args, environment(i if worker else None, ports, tmp),
                                   logs[i]))
        wait_all(processes, logs, time.monotonic() + TIMEOUT)
    finally:
        kill_all(processes)
    return {"tmp": tmp, "out": out, "exits": exits, "state_after_kill": state,
            "files_after_kill": files_after_kill, "left_by_kill": left_by_kill,
            "left_after": worker_dirs(tmp), "seconds": time.monotonic() - started,
            "outputs": dict(zip(names, (log.read_text() for log in logs), strict=True)),
            "weights": {name: dict(np.load(tmp / f"{name}.npz")) for name in names}}


@pytest.mark.slow
def test_killed_worker_run_resumes_and_only_the_chief_writes(runs):
    assert runs["exits"][1] is not None and runs["exits"][1] != 0  # killed
    assert runs["state_after_kill"]["epochs_done"] == 1
    # the chief's files of epoch 1 (curve.png comes last: the kill may beat it), no others
    assert set(RUN_FILES) - {"curve.png"} <= set(runs["files_after_kill"]) <= set(RUN_FILES)
    for name in ("worker0", "worker1"):
        output = runs["outputs"][name]
        assert "REPLICAS 2 multiworker" in output, output[-2000:]
        assert "RESUMED FROM 1 DONE 2" in output, output[-2000:]
        # Keras as released still fails without each fix (else: time to drop it)
        assert "KERAS_BUG symbolic_build: ValueError: PerReplica" in output
        assert "KERAS_BUG reduce_per_replica: ValueError: Invalid reduction dimension 0" in output
    assert "REPLICAS 2 MirroredStrategy" in runs["outputs"]["reference"]
    assert "RESUMED FROM 1 DONE 2" in runs["outputs"]["reference"]
    assert json.loads((runs["out"] / "state.json").read_text())["epochs_done"] == 2
    assert sorted(p.name for p in runs["out"].iterdir()) == RUN_FILES
    # the chief made no temporary run; worker 1 removed the one of its finished run
    assert runs["left_by_kill"][0] == runs["left_after"][0] == []
    assert len(runs["left_by_kill"][1]) == 1 and runs["left_after"] == runs["left_by_kill"]
    print(f"two phases in {runs['seconds']:.0f} s")


@pytest.mark.slow
def test_workers_bit_identical_and_equal_to_one_process(runs):
    workers = [runs["weights"]["worker0"], runs["weights"]["worker1"]]
    reference = runs["weights"]["reference"]
    assert list(workers[0]) == list(workers[1]) == list(reference)
    assert len(workers[0]) > 100  # the model's weights, BN statistics and AdamW slots
    differing = [k for k in workers[0] if not np.array_equal(workers[0][k], workers[1][k])]
    assert not differing, differing[:5]
    moved = [k for k in workers[0] if not np.array_equal(workers[0][k], reference[k])]
    # Against one process: the same replicas on the same halves of every global batch; only
    # where the cross-replica sums run differs (gRPC all-reduce vs in-process). A sum of two
    # float32 terms does not depend on their order, so two replicas should agree exactly (and
    # do, measured); the bound allows float32 reduction noise over the epoch's 23 AdamW steps,
    # 1e-5 of each variable's largest magnitude (AdamW's 1/sqrt(v) amplifies noise in tiny
    # gradients), while a wrong semantics (summed gradients, global BN statistics, another
    # data split) moves weights by O(lr) = 3e-3.
    worst = 0.0
    for key, value in workers[0].items():
        error = float(np.max(np.abs(value.astype(np.float64) - reference[key]), initial=0))
        scale = float(np.max(np.abs(reference[key]), initial=0))
        assert error <= 1e-5 * scale + 1e-7, (key, error, scale)
        worst = max(worst, error / (scale + 1e-12))
    print(f"{len(workers[0])} variables bit-identical across the 2 workers; vs one process: "
          f"{len(moved)} differ, worst relative difference {worst:.2e}")


def test_cli_accepts_multiworker():
    from levit_tf.cli.app import build_parser

    args = build_parser().parse_args(["finetune", "--model", "levit-128S", "--data", "digits",
                                      "--epochs", "1", "--out", "o", "--strategy",
                                      "multiworker"])
    assert args.strategy == "multiworker"
    args.check_args(args)  # FinetuneOptions.validate accepts it too
