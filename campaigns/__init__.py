"""Campaign files: one per campaign, the studies x splits x seeds that ``launch.py campaign NAME``
runs.

A campaign module defines ``STUDIES`` (study -> its controls), ``SPLITS``, ``SEEDS`` and
optionally ``TRIALS``, ``EPOCHS`` and ``BACKBONE`` (see ``default.py``).
"""
