"""Test-only helpers (not installed): PyTorch references, tiny configs, benchmark loading."""
