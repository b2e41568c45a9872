"""Plumbing with no model knowledge: files, optional packages, lazy exports, backends, Keras
internals, image sizes, labels, native logs, CPU features, Keras class registration."""
