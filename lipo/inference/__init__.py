"""Predicting with trained models: one model, a seed ensemble, and how sure it is."""
