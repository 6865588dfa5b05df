"""The campaign's reference piece: the report's reference models on one split over the
campaign's seeds, fitted into the report's cache (so the report that follows costs nothing)."""

from __future__ import annotations

from pathlib import Path

from lipo.campaign.plan import Campaign, Piece

CACHE = Path("reports") / ".cache"  # the report's own (lipo/report/build.py: OUT / ".cache")


def split_of(campaign: Campaign, piece: Piece):
    from lipo.data.molecules import content_sha256, load_molecules, locate
    from lipo.data.splits import make_split

    mols = load_molecules(locate(campaign.data))
    return mols, make_split(piece.split, mols, 0), content_sha256(mols.smiles, mols.y)


def cached(campaign: Campaign, piece: Piece) -> bool:
    """Every model that can run here has its cache file for this split and these seeds."""
    from lipo.report.chemprop_reference import chemprop_missing
    from lipo.report.references import MODELS, cache_file

    _, split, data_sha = split_of(campaign, piece)
    models = [m for m in MODELS if not (m == "chemprop_dmpnn" and chemprop_missing())]
    return all(
        cache_file(m, split.sha256, data_sha, list(piece.seeds), CACHE).is_file() for m in models
    )


def fit(campaign: Campaign, piece: Piece) -> None:
    from lipo.report.references import references

    mols, split, _ = split_of(campaign, piece)
    params = {"data": str(mols.source), "split": piece.split, "split_seed": 0}
    for ref in references(params, split.sha256, list(piece.seeds), CACHE):
        if ref.get("missing"):
            print(f"{ref['model']} on {split.name}: {ref['missing']}")
