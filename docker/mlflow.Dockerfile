# The MLflow server of compose.yaml and deploy/kubernetes: MLflow and the PostgreSQL driver on
# a slim Python (about 0.5 GB), not the GPU image (several GB, CUDA it never uses).
# Build from the repository root:  docker build -f docker/mlflow.Dockerfile -t lipo-mlflow .
FROM python:3.12-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# The MLflow version lipo is tested with; SQLAlchemy 2.1 reads postgresql:// with psycopg 3.
RUN pip install "mlflow==3.17.2" "psycopg[binary]>=3.1" "sqlalchemy>=2.1" \
 && useradd --create-home --uid 1000 mlflow \
 && mkdir -p /app/mlruns && chown mlflow /app/mlruns
# uid 1000, as the GPU image's user: both write the shared mlruns volume.
USER mlflow
EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
