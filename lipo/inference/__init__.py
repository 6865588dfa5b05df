"""Predicting logD with trained runs: one model, or the final seeds as an ensemble."""
