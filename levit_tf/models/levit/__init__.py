"""The LeViT family: configuration and presets (``configuration_levit``, ``presets``), layers
(``layers``, ``attention_bias``, ``block_plan``), the HF-named models (``modeling_levit``), their
training objectives (``distillation``, ``losses``, ``batch_norm_sync``), the folded inference
model (``inference``), other input sizes (``resolution``) and hub look-ups (``hub``).

Import the public names from ``levit_tf`` (lazy); the modules here load Keras.
"""
