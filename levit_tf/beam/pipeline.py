"""The ready pipeline: image files -> RunInference (``SavedModelImageHandler``) -> JSON lines.

``python -m levit_tf.beam --model DIR --input 'photos/*.jpg' --output preds.jsonl [beam
options]`` writes one JSON line per image, ``{"path", "labels", "probabilities", "indices"}``
(top-k, best first), and one line ``{"path", "error"}`` per unreadable image to the dead letter
(``--dead-letter``, default ``preds.dead-letter.jsonl``). The counters ``levit_tf:images`` and
``levit_tf:unreadable_images`` (Beam metrics) count both. Other flags go to Beam
(``--runner``, ``--direct_running_mode``, ``--direct_num_workers``, Dataflow / Flink / Spark
options).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference

from levit_tf.beam.handler import SavedModelImageHandler

FAILED = "failed"
NAMESPACE = "levit_tf"


class ReadImage(beam.DoFn):
    """``ReadableFile`` -> ``(path, bytes)``; a file that cannot be read -> FAILED."""

    def process(self, readable: Any):
        path = readable.metadata.path
        try:
            yield path, readable.read()
        except OSError as err:
            yield beam.pvalue.TaggedOutput(FAILED, {"path": path, "error": f"OSError: {err}"})


class Route(beam.DoFn):
    """Results with an ``error`` -> FAILED (counted as unreadable), the others -> main."""

    def __init__(self) -> None:
        self.images = Metrics.counter(NAMESPACE, "images")

    def process(self, record: dict):
        if "error" in record:
            yield beam.pvalue.TaggedOutput(FAILED, record)
        else:
            self.images.inc()
            yield record


class CountFailed(beam.DoFn):
    """Counts the dead letter's records (``levit_tf:unreadable_images``)."""

    def __init__(self) -> None:
        self.unreadable = Metrics.counter(NAMESPACE, "unreadable_images")

    def process(self, record: dict):
        self.unreadable.inc()
        yield record


def classify_images(pipeline: beam.Pipeline, pattern: str, handler: SavedModelImageHandler,
                    output: str, dead_letter: str) -> None:
    """Adds the pipeline's steps: files matching ``pattern`` -> ``output`` / ``dead_letter``
    (each one file of JSON lines, written when the pipeline finishes)."""
    files = (pipeline | "Match" >> fileio.MatchFiles(pattern)
             | "Open" >> fileio.ReadMatches())
    read = files | "Read" >> beam.ParDo(ReadImage()).with_outputs(FAILED, main="images")
    results = read.images | "Classify" >> RunInference(handler)
    routed = results | "Route" >> beam.ParDo(Route()).with_outputs(FAILED, main="ok")
    _ = (routed.ok | "Json" >> beam.Map(json.dumps)
         | "Write" >> beam.io.WriteToText(output, shard_name_template="", num_shards=1))
    _ = ((read[FAILED], routed[FAILED]) | "Failed" >> beam.Flatten()
         | "Count" >> beam.ParDo(CountFailed()) | "FailedJson" >> beam.Map(json.dumps)
         | "DeadLetter" >> beam.io.WriteToText(dead_letter, shard_name_template="",
                                               num_shards=1))


def counters(result: Any) -> dict[str, float]:
    """The pipeline's ``levit_tf`` counters (committed values), and from RunInference's own
    metrics ``model_loads`` (how many times a worker loaded the model) and ``load_seconds``
    (their total time, warm-up included)."""
    metrics = result.metrics()
    query = metrics.query(beam.metrics.MetricsFilter().with_namespace(NAMESPACE))
    totals: dict[str, float] = {}
    for counter in query["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + (counter.committed or 0)
    loads = metrics.query(beam.metrics.MetricsFilter().with_name(
        "load_model_latency_milli_secs"))["distributions"]
    totals["model_loads"] = sum(d.committed.count for d in loads if d.committed)
    totals["load_seconds"] = sum(d.committed.sum for d in loads if d.committed) / 1000
    return totals


def run(model: str, pattern: str, output: str, dead_letter: str,
        beam_args: Sequence[str] = (), **handler_options: Any) -> dict[str, int]:
    """Runs the pipeline to the end; returns its counters (``images``,
    ``unreadable_images``)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    handler = SavedModelImageHandler(model, **handler_options)
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    classify_images(pipeline, pattern, handler, output, dead_letter)
    result = pipeline.run()
    result.wait_until_finish()
    return counters(result)


__all__ = ["FAILED", "NAMESPACE", "classify_images", "counters", "run"]
