"""Processes and devices: Accelerate, GPUs, worker processes, file locks, gathering."""
