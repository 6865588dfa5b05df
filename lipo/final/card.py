"""A final model's card (Markdown): what it was trained on, how, how well, and the commands
that made it and that use it. Pure text from plain data; logged with the model."""

from __future__ import annotations

import shlex
import statistics
from dataclasses import dataclass, field

METRICS = ("mse", "rmse", "mae", "r2")
# Flags of the final phase that the search that chose the settings did not have.
FINAL_ONLY = {"--final": 0, "--seeds": 1, "--control": 1, "--register": 1}


@dataclass
class CardFacts:
    study: str
    run_id: str
    seed: int
    optuna_study: str
    best_trial: str
    data: str
    data_sha256: str
    molecules: int
    split: str
    split_sha256: str
    split_sizes: dict  # part -> molecules
    backbone: str
    revision: str | None
    adapter: str
    settings: dict  # the run's params (its RunConfig, flattened)
    per_seed: dict  # seed -> {"mse": .., "rmse": .., ...} on test
    argv: list = field(default_factory=list)  # the final command's arguments
    control: str = ""


def metric_line(name: str, per_seed: dict, seed: int) -> str:
    values = [m[name] for m in per_seed.values() if name in m]
    spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    mine = per_seed.get(seed, {}).get(name)
    this = f"{mine:.4f}" if mine is not None else "n/a"
    return f"| test/{name} | {statistics.mean(values):.4f}{spread} | {this} |"


def search_argv(argv: list[str]) -> list[str]:
    """The final command without its final-only flags: the search it re-trained."""
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        flag = arg.split("=", 1)[0]
        if flag in FINAL_ONLY:
            skip = FINAL_ONLY[flag] if "=" not in arg else 0
            continue
        out.append(arg)
    return out


def commands(facts: CardFacts) -> list[str]:
    final = ["python", "launch.py", *facts.argv]
    search = ["python", "launch.py", *search_argv(facts.argv)]
    return [
        f"{shlex.join(search)}    # the search (Optuna study {facts.optuna_study})",
        f"{shlex.join(final)}    # the final phase that trained this model",
        f"python launch.py predict --run {facts.run_id} --smiles molecules.csv "
        "--out predictions.csv",
        f"python launch.py predict --study {facts.study} --final --smiles molecules.csv "
        "--out ensemble.csv    # every seed: mean and spread",
        f"mlflow models serve -m runs:/{facts.run_id}/model --env-manager local "
        "--host 127.0.0.1 --port 5001",
    ]


def render(facts: CardFacts) -> str:
    seeds = ", ".join(str(s) for s in sorted(facts.per_seed))
    sizes = ", ".join(f"{part} {n}" for part, n in facts.split_sizes.items())
    knobs = "\n".join(f"| `{k}` | `{v}` |" for k, v in sorted(facts.settings.items()))
    control = f" (control: {facts.control})" if facts.control else ""
    peft = facts.adapter in ("lora", "ia3")
    weights = (
        "PEFT's format: `checkpoint/adapter/` loads with `PeftModel.from_pretrained("
        "lipo.models.checkpoint.base_model(checkpoint), checkpoint / 'adapter')`"
        if peft
        else "lipo's format: `checkpoint/weights.safetensors`, loaded by "
        "`lipo.models.checkpoint.load_checkpoint`"
    )
    lines = [
        f"# lipo model: {facts.study}{control}, seed {facts.seed}",
        "",
        "Predicts logD at pH 7.4 (lipophilicity) from a SMILES string. Input: a table with a "
        "`smiles` column; output: `logd_pred`, and `error` for rows RDKit cannot parse.",
        "",
        f"- MLflow run: `{facts.run_id}`; model: `runs:/{facts.run_id}/model`",
        f"- Data: `{facts.data}` ({facts.molecules} valid molecules; content sha256 "
        f"`{facts.data_sha256}`)",
        f"- Split: `{facts.split}` ({sizes}; sha256 `{facts.split_sha256}`); the test part "
        "was used only for the metrics below",
        f"- Seeds of the final phase: {seeds}; this model: seed {facts.seed}",
        f"- Backbone: `{facts.backbone}`, revision "
        + (
            f"`{facts.revision}`"
            if facts.revision
            else "none (built at random: its weights are saved in the checkpoint)"
        ),
        f"- Adapter: `{facts.adapter}`; weights in {weights}",
        f"- Settings: trial {facts.best_trial} of Optuna study `{facts.optuna_study}`, chosen by "
        "validation MSE",
        "",
        "## Test metrics",
        "",
        f"| metric | mean ± std over {len(facts.per_seed)} seeds | this seed |",
        "|---|---|---|",
        *[
            metric_line(m, facts.per_seed, facts.seed)
            for m in METRICS
            if any(m in v for v in facts.per_seed.values())
        ],
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
        knobs,
        "",
        "## Commands",
        "",
        "```bash",
        *commands(facts),
        "```",
        "",
        'Python: `mlflow.pyfunc.load_model("runs:/' + facts.run_id + '/model")'
        '.predict(pandas.DataFrame({"smiles": ["CCO"]}))`',
        "",
    ]
    return "\n".join(lines)


def ensemble_card(
    study: str,
    summary: dict,
    per_seed: dict,
    model_uri: str,
    registered: str | None,
    served: dict | None = None,
) -> str:
    """The registered ensemble's card: ``summary`` is ``lipo.inference.bundle.summary``,
    ``served`` the parent run's ``served/*`` metrics."""
    seeds = ", ".join(str(s) for s in summary["seeds"])
    pct = f"{100 * summary['coverage']:g}%"
    name = f"models:/{registered}@champion" if registered else model_uri
    lines = [
        f"# lipo model: {study}, ensemble of seeds {seeds}",
        "",
        "Predicts logD at pH 7.4 from a SMILES string. Input: a table with a `smiles` column. "
        "Output per row: `logd_pred` (mean over the seeds, blended with the descriptor "
        "partner below), `logd_std` (the seeds' spread), "
        f"`logd_lo`/`logd_hi` (a {pct} split-conformal interval; param `coverage`), "
        "`similarity` (largest Tanimoto similarity, Morgan radius 2, 2048 bits, to a training "
        "molecule) and `error` for rows RDKit cannot parse.",
        "",
        f"- Model: `{model_uri}`; members: final runs "
        + ", ".join(f"`{r}`" for r in summary["run_ids"]),
        f"- Interval: `logd_pred` ± {summary['half_width']:.3f} logD, calibrated on "
        f"{summary['calibration_molecules']} validation molecules (never test). Its coverage "
        "holds for molecules like the validation ones: check `similarity` (the report gives "
        "the error by similarity band and the coverage measured on test)",
        f"- Training set: {summary['training_molecules']} molecules",
        *refit_lines(summary, served),
        *partner_lines(summary.get("partner"), served),
        "",
        "## Test metrics of the members",
        "",
        f"| metric | mean ± std over {len(per_seed)} seeds |",
        "|---|---|",
        *[
            metric_line(m, per_seed, -1).rsplit("|", 2)[0] + "|"
            for m in METRICS
            if any(m in v for v in per_seed.values())
        ],
        "",
        "## Commands",
        "",
        "```bash",
        f"python launch.py predict --study {study} --final --smiles molecules.csv "
        "--out ensemble.csv    # the same columns",
        f"mlflow models serve -m {name} --env-manager local --host 127.0.0.1 --port 5001",
        "```",
        "",
        f'Python: `mlflow.pyfunc.load_model("{name}").predict(pandas.DataFrame('
        '{"smiles": ["CCO"]}))`',
        "",
    ]
    return "\n".join(lines)


def refit_lines(summary: dict, served: dict | None) -> list[str]:
    """Which members are refits on training + validation (``lipo.final.refit``)."""
    refits = [r for r in summary.get("refit_run_ids", []) if r]
    if not refits:
        return []
    line = (
        f"- Refitted members: {len(refits)} of {len(summary['run_ids'])} serve a refit of "
        "their final run on training + validation molecules, for the epochs that run kept "
        "(runs " + ", ".join(f"`{r}`" for r in refits) + "); the weight and the interval are "
        "the final runs' (their validation predictions)"
    )
    if served and "served/unrefitted_test_mse" in served:
        line += (
            f"; test MSE of the members' mean {served['served/ensemble_test_mse']:.4f}, "
            f"of the final runs' own {served['served/unrefitted_test_mse']:.4f}"
        )
    return [line]


def partner_lines(partner: dict | None, served: dict | None) -> list[str]:
    """The descriptor partner's bullet: the blend, and what each part scores."""
    if partner is None:
        return []
    w, val = partner["weight"], partner["val_mse"]
    models = f"LightGBM ({len(partner['files'])} seeds)"
    if "kernel" in partner:  # absent from bundles before the kernel model
        params = partner["kernel"]["params"]
        models = (
            f"the mean of {models} and a kernel SVR (C {params['C']:g}; Tanimoto on the counts + "
            f"RBF on the descriptors, {params['descriptor_share']:g} of it)"
        )
    line = (
        f"- Descriptor partner: `logd_pred` = {w:.2f} x the seeds' mean + {1 - w:.2f} x "
        f"{models} on Morgan counts, feature-Morgan counts and RDKit 2D descriptors, "
        f"the weight chosen on validation with the partner "
        f"fitted on the training set: val MSE {val['served']:.4f} served, "
        f"{val['ensemble']:.4f} the seeds alone, {val['partner']:.4f} the partner alone"
    )
    if partner.get("fitted_on_molecules"):
        line += (
            f"; the partner served is refitted on training + validation "
            f"({partner['fitted_on_molecules']} molecules)"
        )
    if served:
        line += (
            f"; test MSE {served['served/test_mse']:.4f} served, "
            f"{served['served/ensemble_test_mse']:.4f} the seeds alone, "
            f"{served['served/partner_test_mse']:.4f} the partner alone"
        )
    return [line]
