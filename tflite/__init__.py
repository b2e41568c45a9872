"""TFLite export for ARM mobile CPUs (installed as ``levit_tf.tflite``)."""
