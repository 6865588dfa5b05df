#!/usr/bin/env bash
# Prepare what bench/gpu_check.sh needs on a GPU machine that has no network: wheels of the
# packages its image lacks, and the Lipophilicity table. Run here (with network), from anywhere:
#
#     bash bench/gpu_wheels.sh            # -> .whl/*.whl and .whl/data/ (git-ignored)
#
# then carry `.whl` to the GPU machine beside the working tree; gpu_check.sh installs the
# wheels with `pip install --no-index --no-deps --target /tmp/site` and reads .whl/data.
#
# The GPU image (CUDA torch, transformers, accelerate, peft, pandas, scikit-learn, scipy,
# matplotlib, pytest, tokenizers, numpy, pyarrow, protobuf, requests, click, anyio, h11,
# jinja2, pyyaml, packaging, tqdm, typing-extensions, ...) has neither RDKit nor MLflow nor
# Optuna. The list: rdkit, optuna and MLflow's client (mlflow-skinny) with every requirement
# they import that the image lacks, at the versions lipo is tested with; CPython 3.12,
# manylinux x86_64. Found by running gpu_check.sh --cpu-dry-run in an environment holding
# only the image's packages (and their requirements) and these: the SQLAlchemy tracking store
# imports cryptography, `import mlflow` imports databricks-sdk and fastapi. Left out, to stay
# near 50 MiB: the full `mlflow` wheel (the UI server: 12 MB of JavaScript, Flask, gunicorn,
# graphene, docker, huey, skops; lipo's client never imports them) and mlflow-tracing (every
# file of it is in mlflow-skinny, byte for byte). rdkit alone is 30 MiB.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.whl}"
WHEELS=(
  rdkit==2026.9.1
  optuna==5.0.0 alembic==1.20.1 sqlalchemy==2.1.9 mako==1.4.3 colorlog==6.12.0
  mlflow-skinny==3.17.2 cachetools==7.3.3 databricks-sdk==0.162.0 google-auth==2.63.0
  pyasn1-modules==0.4.2 pyasn1==0.6.3 cryptography==48.0.0 cffi==2.0.0 pycparser==3.0
  fastapi==0.165.0 starlette==1.10.0 pydantic==2.13.4 pydantic-core==2.46.4
  annotated-types==0.7.0 typing-inspection==0.4.2 annotated-doc==0.0.7
  opentelemetry-api==1.45.2 opentelemetry-proto==1.45.2 opentelemetry-sdk==1.45.2
  opentelemetry-semantic-conventions==0.66b2 gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3
  importlib-metadata==9.1.0 zipp==4.1.2 python-dotenv==1.2.2 sqlparse==0.6.1 uvicorn==0.54.0
  # in the image, but pydantic needs a newer one than an image may have (>= 4.14.1)
  typing-extensions==4.16.0
)
rm -f "$DEST"/*.whl  # a stale wheel would be installed too
mkdir -p "$DEST"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$DEST" "${WHEELS[@]}"
# The data: LIPO_DATA_DIR's table (the tests' default), nothing else.
DATA="${LIPO_DATA_DIR:-$ROOT/../shared/data}"
mkdir -p "$DEST/data"
cp "$DATA/lipophilicity.csv" "$DEST/data/"
count=$(ls "$DEST"/*.whl | wc -l)
echo "$count wheels of ${#WHEELS[@]} requested; $(du -sh "$DEST" | cut -f1) in $DEST"
ls -S "$DEST"/*.whl | xargs -n1 basename
[ "$count" -eq "${#WHEELS[@]}" ] || { echo "missing wheels" >&2; exit 1; }
