"""lipo: hyperparameter sweeps with experiment tracking for chemical language models on logD."""

__version__ = "0.1.0"
