"""Writing models for serving: the one SavedModel writer (``saved_model``, also behind the TFLite
exporter) and Keras' own ``model.export`` support for LeViT models (``keras_export``)."""
