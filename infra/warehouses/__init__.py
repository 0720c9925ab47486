"""The data-warehouse adapters (each implements `projections.sinks.warehouse.Warehouse`), one
module per warehouse, and `open_warehouse`, which picks one by the integration's
`config.provider`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_warehouse(config: dict[str, Any], default_path: Path) -> Any:
    """The adapter of a warehouse integration's clear configuration (its secrets opened).
    `default_path`: DuckDB's file when the configuration names none."""
    provider = str(config["provider"])
    if provider == "duckdb":
        from infra.warehouses.duckdb import DuckDbWarehouse  # noqa: PLC0415 - optional extra

        return DuckDbWarehouse(config, default_path)
    if provider in ("postgres", "redshift"):
        from infra.warehouses.postgres import PostgresWarehouse  # noqa: PLC0415

        return PostgresWarehouse(config)
    if provider == "snowflake":
        from infra.warehouses.snowflake import SnowflakeWarehouse  # noqa: PLC0415

        return SnowflakeWarehouse(config)
    if provider == "bigquery":
        from infra.warehouses.bigquery import BigQueryWarehouse  # noqa: PLC0415

        return BigQueryWarehouse(config)
    msg = f"unknown warehouse provider {provider!r}"
    raise ValueError(msg)
