"""The migrated PostgreSQL catalog has the collations the schema declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from recsys.catalog import db
from recsys.catalog.schema import Base


def declared_collations() -> dict[tuple[str, str], str | None]:
    dialect = sa.dialects.postgresql.dialect()  # type: ignore[attr-defined]
    out = {}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            type_ = column.type.dialect_impl(dialect)
            if isinstance(type_, sa.String):
                out[(table.name, column.name)] = type_.collation
    return out


def migrated_collations(engine: sa.Engine) -> dict[tuple[str, str], str | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT table_name, column_name, collation_name FROM information_schema.columns
                   WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying')
                     AND table_name <> 'alembic_version'"""
            )
        ).all()
    return {(r[0], r[1]): r[2] for r in rows}


def test_identifiers_compare_bytes_on_postgresql(pg_engine: sa.Engine) -> None:
    declared = declared_collations()
    assert declared[("track", "source_key")] == "C" and declared[("track", "title")] is None
    assert migrated_collations(pg_engine) == declared


def test_the_collation_migration_goes_down_and_up_again(pg_engine: sa.Engine) -> None:
    command.downgrade(db._alembic_config(pg_engine), "0002_mpdperf")
    assert set(migrated_collations(pg_engine).values()) == {None}
    db.upgrade(pg_engine)
    assert migrated_collations(pg_engine) == declared_collations()


def test_the_migrations_build_exactly_the_declared_schema(catalog_engine: sa.Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with catalog_engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_the_newest_migrations_go_down_and_up_again(catalog_engine: sa.Engine) -> None:
    command.downgrade(db._alembic_config(catalog_engine), "0003_key_collation")
    assert not {"feedback", "api_key"} & set(sa.inspect(catalog_engine).get_table_names())
    db.upgrade(catalog_engine)
    assert {"feedback", "api_key"} <= set(sa.inspect(catalog_engine).get_table_names())
    columns = {c["name"] for c in sa.inspect(catalog_engine).get_columns("pipeline_run")}
    assert {"host", "pid"} <= columns
