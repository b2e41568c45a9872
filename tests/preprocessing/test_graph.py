"""The preprocessing is a pure TF graph: tf.function, tf.data and SavedModel signatures."""

from __future__ import annotations

import numpy as np
import PIL.Image
import tensorflow as tf

from levit_tf.preprocessing import LevitImageProcessor


def test_tf_function_with_dynamic_shapes(photos):
    processor = LevitImageProcessor()
    fn = tf.function(
        processor.tf_preprocess, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)]
    )
    for name in ("chelsea", "hubble_deep_field"):
        out = fn(tf.constant(photos[name]))
        assert out.shape == (224, 224, 3) and out.dtype == tf.float32
        np.testing.assert_array_equal(out.numpy(), processor(photos[name])["pixel_values"][0])
    graph = fn.get_concrete_function().graph.as_graph_def()
    ops = {node.op for node in graph.node}
    for fdef in graph.library.function:
        ops |= {node.op for node in fdef.node_def}
    assert not ops & {"EagerPyFunc", "PyFunc", "PyFuncStateless"}


def test_tf_data_map_matches_processor(photos):
    processor = LevitImageProcessor()
    names = ["coffee", "rocket", "cat"]
    ds = tf.data.Dataset.from_generator(
        lambda: (photos[n] for n in names),
        output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )
    ds = ds.map(processor.tf_preprocess, num_parallel_calls=tf.data.AUTOTUNE).batch(3)
    batch = next(iter(ds)).numpy()
    expected = processor([PIL.Image.fromarray(photos[n]) for n in names])["pixel_values"]
    np.testing.assert_array_equal(batch, expected)


def test_saved_model_signature(tmp_path, photos):
    processor = LevitImageProcessor()

    class Preprocess(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.uint8)])
        def serve(self, image):
            return {"pixel_values": processor.tf_preprocess(image)[tf.newaxis]}

    module = Preprocess()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    serve = loaded.signatures["serving_default"]
    gray = photos["moon"][:, :, None]
    out = serve(image=tf.constant(gray))["pixel_values"].numpy()
    np.testing.assert_array_equal(out, processor(photos["moon"])["pixel_values"])
