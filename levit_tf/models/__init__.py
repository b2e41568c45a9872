"""Model families. One folder per family, as in keras-hub and HF transformers: ``levit/``."""
