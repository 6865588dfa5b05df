"""The work folder: what one machine keeps for itself, apart from the shared stores (the
Optuna storage and the MLflow tracking server). ``--workdir DIR`` or ``LIPO_HOME``:

    DIR/state/<optuna study>/   resumable training states (trial-N, final-T-C-seedS)
    DIR/cache/lipo/             the downloaded data table, RDKit descriptor matrices
    DIR/cache/reports/          the report's reference models (reports/.cache otherwise)
    DIR/cache/influence|mlm/    influence scores, masked-LM adaptations (mlruns/cache otherwise)

Neither given: as before, ``mlruns/state``, ``mlruns/cache`` and ``reports/.cache`` under
the current folder, the other caches under ``~/.cache/lipo``. Two launchers on two machines
each have their own work folder; a retried trial resumes its state where the folder is shared (a
cluster's shared
volume), and starts again from its first batch where it is not. What must never happen twice,
a final seed's training, is claimed in the shared Optuna storage (``lipo.search.claims``).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "LIPO_HOME"


def use(folder: str | None) -> None:
    """``--workdir``: set for this process and the processes it starts (``--workers``)."""
    if folder:
        os.environ[ENV] = str(Path(folder).expanduser().resolve())


def home() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value).expanduser() if value else None


def state_root() -> Path:
    """Resumable training states."""
    root = home()
    return root / "state" if root else Path("mlruns") / "state"


def cache(name: str, default: Path) -> Path:
    """The cache folder ``name``: under the work folder when one is given, else ``default``."""
    root = home()
    return root / "cache" / name if root else default
