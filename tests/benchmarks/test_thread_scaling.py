"""benchmarks/thread_scaling.py's coordinator on real worker processes (a tiny model, 2 rounds):
every worker ran with the threads asked for, one at a time in the seeded order, and the
summary is the per-round arithmetic of the timings the workers returned."""

from __future__ import annotations

import itertools
import random
import statistics
from importlib import import_module

import pytest

from levit_tf import LevitConfig, LevitForImageClassificationWithTeacher
from levit_tf.testing.models import TINY, randomize
from levit_tf.tflite import export

ROUNDS, RUNS, SEED = 3, 3, 7
FLOAT32, DYNAMIC = "float32", "dynamic"  # the reference and the other mode (peer or compared)


@pytest.fixture(scope="module")
def scaling():
    return import_module("benchmarks.thread_scaling")


@pytest.fixture(scope="module")
def measured(scaling, tmp_path_factory):
    model = randomize(LevitForImageClassificationWithTeacher(LevitConfig(**TINY)), seed=1)
    folder = tmp_path_factory.mktemp("thread_scaling")
    float32 = export(model, folder / "float32.tflite").path
    dynamic = export(model, folder / "dynamic.tflite", "dynamic").path
    files = {FLOAT32: ("tflite", float32), DYNAMIC: ("tflite", dynamic)}
    return scaling.measure(files, (1, 2), ROUNDS, RUNS, warmup=1, turn_warmup=1, seed=SEED,
                           settle_s=0.0)


def test_every_worker_ran_its_turns_alone_in_the_seeded_order(measured):
    keys = [(mode, t) for mode in (FLOAT32, DYNAMIC) for t in (1, 2)]
    assert list(measured.workers) == keys
    assert len({info["pid"] for info in measured.workers.values()}) == len(keys)
    for (_, threads), info in measured.workers.items():
        assert info["threads"] == threads and f"num_threads={threads}" in info["runtime"]
    rng = random.Random(SEED)
    assert measured.orders == [rng.sample(keys, len(keys)) for _ in range(ROUNDS)]
    spans = [span for round_spans in measured.turns for span in round_spans]
    assert all(start < end for start, end in spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # no overlap
    for rounds in measured.times.values():
        assert len(rounds) == ROUNDS
        assert all(len(runs) == RUNS and min(runs) > 0 for runs in rounds)


def test_summary_is_the_per_round_arithmetic(scaling, measured):
    as_peer = scaling.summarize(measured.times, reference=FLOAT32, peers=(DYNAMIC,))
    as_mode = scaling.summarize(measured.times, reference=FLOAT32, peers=())
    medians = {key: [statistics.median(runs) for runs in rounds]
               for key, rounds in measured.times.items()}

    def check(row, values):
        values = sorted(values)  # 3 rounds: p25 / p75 interpolate halfway
        expected = {"median": values[1], "min": values[0], "max": values[2],
                    "p25": (values[0] + values[1]) / 2, "p75": (values[1] + values[2]) / 2}
        assert {k: row[k] for k in expected} == pytest.approx(expected, rel=1e-12)

    def per_round(a, b):
        return [x / y for x, y in zip(medians[a], medians[b], strict=True)]

    assert len(as_peer["latency_ms"]) == 4
    for row in as_peer["latency_ms"]:
        check(row, medians[(row["mode"], row["threads"])])
    assert [r["mode"] for r in as_peer["speedup"]] == [FLOAT32, DYNAMIC]
    for row in as_peer["speedup"]:
        check(row, per_round((row["mode"], 1), (row["mode"], 2)))
    assert [(r["threads"], r["peer"], r["best"]) for r in as_peer["vs_peer"]] == \
        [(1, DYNAMIC, True), (2, DYNAMIC, True)]
    assert not as_peer["vs_reference"] and not as_mode["vs_peer"]
    assert [(r["mode"], r["threads"]) for r in as_mode["vs_reference"]] == \
        [(DYNAMIC, 1), (DYNAMIC, 2)]
    for peer_row, mode_row in zip(as_peer["vs_peer"], as_mode["vs_reference"], strict=True):
        ours_over_peer = per_round((FLOAT32, peer_row["threads"]), (DYNAMIC, peer_row["threads"]))
        check(peer_row, ours_over_peer)
        check(mode_row, [1 / r for r in ours_over_peer])


def test_best_peer_is_the_lowest_median(scaling, measured):
    times = {(FLOAT32, 1): measured.times[(FLOAT32, 1)],
             ("slow peer", 1): [[3 * t for t in runs] for runs in measured.times[(DYNAMIC, 1)]],
             ("fast peer", 1): measured.times[(DYNAMIC, 1)]}
    rows = scaling.summarize(times, reference=FLOAT32, peers=("slow peer", "fast peer"))
    assert [(r["peer"], r["best"]) for r in rows["vs_peer"]] == \
        [("slow peer", False), ("fast peer", True)]
    assert rows["vs_peer"][0]["median"] == pytest.approx(rows["vs_peer"][1]["median"] / 3,
                                                         rel=1e-12)
    report = scaling.format_report(scaling.summarize(measured.times, FLOAT32, (DYNAMIC,)),
                                   FLOAT32)
    assert f"{DYNAMIC} *" in report and "2-thread speed-up" in report
