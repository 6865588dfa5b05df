"""chemprop's D-MPNN (v2) as a reference row, where chemprop is installed
(``pip install -e ".[chemprop]"``): bond message passing, mean aggregation, a regression
feed-forward head on standardised targets; the epoch kept is the best on our validation split,
as the other references pick nothing on test. chemprop's defaults otherwise."""

from __future__ import annotations

import importlib.util

import numpy as np

EPOCHS = 50  # chemprop's own default


def chemprop_missing() -> str:
    """Why the row cannot be computed here ('' when it can)."""
    if importlib.util.find_spec("chemprop") is None:
        return 'not installed (pip install -e ".[chemprop]")'
    return ""


def fit_predict_dmpnn(
    seed: int, smiles: list[str], y: np.ndarray, split, epochs: int = EPOCHS
) -> np.ndarray:
    import tempfile

    from chemprop import data, featurizers, models, nn
    from lightning import pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    pl.seed_everything(seed, workers=True)
    featurizer = featurizers.SimpleMoleculeMolGraphFeaturizer()

    def dataset(part):
        points = [data.MoleculeDatapoint.from_smi(smiles[i], [float(y[i])]) for i in part]
        return data.MoleculeDataset(points, featurizer)

    train, val, test = dataset(split.train), dataset(split.val), dataset(split.test)
    scaler = train.normalize_targets()
    val.normalize_targets(scaler)
    ffn = nn.RegressionFFN(output_transform=nn.UnscaleTransform.from_standard_scaler(scaler))
    model = models.MPNN(nn.BondMessagePassing(), nn.MeanAggregation(), ffn)
    with tempfile.TemporaryDirectory() as folder:
        best = ModelCheckpoint(dirpath=folder, monitor="val_loss", mode="min")
        trainer = pl.Trainer(
            logger=False,
            enable_progress_bar=False,
            accelerator="auto",
            devices=1,
            max_epochs=epochs,
            callbacks=[best],
        )
        trainer.fit(
            model,
            data.build_dataloader(train, num_workers=0, seed=seed),
            data.build_dataloader(val, num_workers=0, shuffle=False),
        )
        batches = trainer.predict(
            model, data.build_dataloader(test, num_workers=0, shuffle=False), ckpt_path="best"
        )
    return np.concatenate([b.numpy().reshape(-1) for b in batches])
