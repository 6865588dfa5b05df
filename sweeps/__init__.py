"""One file per study: its search space as Python. The file name is the ``--study`` name.

A study module defines ``STRATEGY``, ``ADAPTER``, ``TRIALS``, ``EPOCHS``, optionally
``DEFAULTS`` (settings fixed for the study) and ``space(trial) -> dict`` (settings drawn by
Optuna, keyed by ``RunConfig`` field or 'adapter.knob' / 'strategy.knob').
"""
