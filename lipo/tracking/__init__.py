"""MLflow, behind one wall: the store, a run's recorder, and the names runs carry."""
