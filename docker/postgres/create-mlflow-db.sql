-- The official postgres image runs this once, on first start: POSTGRES_DB makes "optuna",
-- this makes MLflow's database beside it (the same two databases the native test creates).
CREATE DATABASE mlflow OWNER lipo;
