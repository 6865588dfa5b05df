"""Encoders, their tokenizers, the regression head and the checkpoints that rebuild them."""
