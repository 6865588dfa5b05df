"""One trial's training: its data and model, the fit loop, optimiser steps, resumable state."""
