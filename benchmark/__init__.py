"""Benchmark image classifiers: classical models on handcrafted features vs CNNs."""

__version__ = "0.1.0"
