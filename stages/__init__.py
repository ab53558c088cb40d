"""Pipeline stages: plain functions over Arrow tables and typed configs. No Prefect, no file I/O."""
