"""Helpers for checking levit_tf against the PyTorch references (torch, timm, transformers)."""
