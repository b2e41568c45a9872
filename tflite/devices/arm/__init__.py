"""TFLite files on emulated ARM CPUs: the aarch64 LiteRT wheel and its XNNPACK kernels under
qemu-user (``runtime``), CPU profiles (``profiles``), the ARM kernel families in qemu's
instruction log (``kernels``), and the comparison with the x86 run (``verify``).

Importing this package loads neither TensorFlow nor LiteRT.
"""

from levit_tf.tflite.devices.arm.profiles import DEFAULT, PROFILES, Profile, parse_profiles

__all__ = ["DEFAULT", "PROFILES", "Profile", "parse_profiles"]
