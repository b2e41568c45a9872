"""``python -m levit_tf.cli`` = ``levit-tf``."""

import sys

from levit_tf.cli.app import main

sys.exit(main())
