"""The search: Optuna behind one wall. ``TrialBook`` (book.py) hands out plain
``TrialRecord``s and takes back complete / prune / fail / interrupt; ``loop.search`` trains
them. Only this package imports optuna."""
