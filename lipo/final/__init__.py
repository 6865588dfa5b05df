"""The final phase: best settings x seeds, the only test evaluation, exported models and cards."""
