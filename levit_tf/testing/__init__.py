"""Helpers for verifying levit_tf against the PyTorch references (need torch, timm, transformers)."""
