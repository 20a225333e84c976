"""`phase4 export`: Hive-partitioned datasets, whole dates only, stale dates replaced or removed."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.ml_feature_store_v2 import FEATURE_NAMES
from phase4.cli import app
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    OUTPUT_TABLES,
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_ZONE_ANALYSIS,
    TableSchema,
)
from tasks.export import STAGING_DIR, export_range, write_date
from tasks.io import ensure_tables
from tasks.warehouse import open_warehouse
from tasks.warehouse.base import SeasonRows
from tests.builders import replace_partitions

D = date(2025, 1, 10)
DAYS = [D - timedelta(days=1), D, D + timedelta(days=1)]
_VALUES = {
    "STRING": "x",
    "INT64": 3,
    "FLOAT64": 1.5,
    "BOOL": True,
    "TIMESTAMP": datetime(2025, 1, 9, 23, 0, tzinfo=UTC),
}


# A P5 row's tags: 0-19 phase4, 20-24 default, 25-59 calculated but 26, 27, 47, 50 missing.
TAGS = ["phase4"] * 20 + ["default"] * 5 + ["calculated"] * 35
for _i in (26, 27, 47, 50):
    TAGS[_i] = "missing"


def rows_for(schema: TableSchema, day: date, keys: list[str]) -> pl.DataFrame:
    """One row per key for `day`; every column holds a fixed value of its type (P5's feature
    columns a consistent set: feature i is i, NULL where its tag is default or missing)."""
    columns: dict[str, list[object]] = {}
    value_of = {f"feature_{i}_value": i for i in range(60)}
    for column in schema.columns:
        if column.name == schema.partition_column or column.type == "DATE":
            value: object = day
        elif column.name == "features":
            value = [float(i) for i in range(25)]
        elif column.name == "feature_names":
            value = list(FEATURE_NAMES)
        elif column.name == "feature_sources":
            value = TAGS[:25]
        elif column.name in value_of:
            i = value_of[column.name]
            value = None if TAGS[i] in ("default", "missing") else float(i)
        elif column.name == "feature_sources_json":
            value = json.dumps({str(i): tag for i, tag in enumerate(TAGS)})
        elif column.name == "default_feature_indices":
            value = [i for i, tag in enumerate(TAGS) if tag in ("default", "missing")]
        elif column.mode == "REPEATED":
            value = [_VALUES[column.type]]
        else:
            value = _VALUES[column.type]
        columns[column.name] = [value] * len(keys)
    key = schema.key[0]
    columns[key] = list(keys)
    return pl.DataFrame(columns, schema=schema.polars_schema)


def seed(url: str, rows_per_day: dict[date, int]) -> None:
    """P1 and P5 partitions with the given row counts (0: an empty partition), and a Phase 3
    season 2024-25 (one row), which bounds the dates a command takes."""
    warehouse = open_warehouse(url)
    ensure_tables(warehouse)
    season = pl.DataFrame({"season_year": [2024], "game_id": ["g"]})
    warehouse.replace_seasons_of([SeasonRows(PLAYER_GAME_SUMMARY.full_name, [2024], season)])
    for schema in (TEAM_DEFENSE_ZONE_ANALYSIS, ML_FEATURE_STORE_V2):
        frames = [
            rows_for(schema, day, [f"k{i}" for i in range(n)]) for day, n in rows_per_day.items()
        ]
        replace_partitions(warehouse, schema, list(rows_per_day), pl.concat(frames).to_arrow())


def phase4(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def dataset(out: Path, schema: TableSchema) -> Path:
    return out / schema.full_name


def test_every_date_is_a_hive_partition_with_descriptions_and_modes(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {DAYS[0]: 2, DAYS[1]: 3, DAYS[2]: 1})
    out = tmp_path / "out"
    code, printed = phase4(
        "export", "--start", str(DAYS[0]), "--end", str(DAYS[2] + timedelta(1)), "--out", str(out)
    )
    assert code == 0, printed
    assert (
        "nba_predictions.ml_feature_store_v2: 6 rows in 3 date(s), 1 date(s) without rows"
        in printed
    )
    p5 = dataset(out, ML_FEATURE_STORE_V2)
    assert sorted(p.name for p in p5.iterdir()) == [f"game_date={d}" for d in DAYS]
    assert sorted(p.name for p in (p5 / f"game_date={D}").iterdir()) == ["part-0.parquet"]
    assert not (out / STAGING_DIR).exists()
    read = pl.scan_parquet(p5, hive_partitioning=True).collect()
    assert read.group_by("game_date").len().sort("game_date").rows() == [
        (DAYS[0], 2),
        (DAYS[1], 3),
        (DAYS[2], 1),
    ]
    assert read.schema["game_date"] == pl.Date
    assert read.schema["features"] == pl.List(pl.Float64)
    p1 = pl.scan_parquet(dataset(out, TEAM_DEFENSE_ZONE_ANALYSIS), hive_partitioning=True)
    assert (
        p1.select(pl.col("analysis_date").unique().sort()).collect().to_series().to_list() == DAYS
    )
    schema = pq.read_schema(p5 / f"game_date={D}" / "part-0.parquet")
    field = schema.field("feature_quality_score")
    assert field.metadata == {b"description": b"Mean of 100/75/100/40 by source"}
    assert not field.nullable
    assert schema.field("insufficient_data_reason").nullable
    assert schema.metadata[b"table"] == b"nba_predictions.ml_feature_store_v2"
    # SPEC 16.1's columns travel with their types, modes and the schema's descriptions.
    for name in ("feature_0_value", "feature_59_value", "matchup_quality_pct"):
        assert schema.field(name).type == pa.float64()
    assert schema.field("feature_59_value").nullable
    assert not schema.field("is_training_ready").nullable
    assert schema.field("default_feature_indices").type == pa.list_(pa.int64())
    for name in (
        *(f"feature_{i}_value" for i in range(60)),
        "feature_sources_json",
        "matchup_data_status",
        "quality_alert_level",
        "matchup_quality_pct",
        "player_history_quality_pct",
        "vegas_quality_pct",
        "game_context_quality_pct",
        "required_default_count",
        "default_feature_indices",
        "is_training_ready",
        "is_quality_ready",
    ):
        described = ML_FEATURE_STORE_V2.column(name).description
        assert described and schema.field(name).metadata == {b"description": described.encode()}
    row = read.filter(pl.col("game_date") == D).row(0, named=True)
    assert (row["feature_0_value"], row["feature_24_value"], row["feature_26_value"]) == (
        0.0,
        None,
        None,
    )
    assert row["feature_59_value"] == 59.0
    assert json.loads(row["feature_sources_json"])["47"] == "missing"
    # The other three tables have no rows in the warehouse: no dataset folder at all.
    assert sorted(p.name for p in out.iterdir()) == [
        "nba_precompute.team_defense_zone_analysis",
        "nba_predictions.ml_feature_store_v2",
    ]


def test_reexport_replaces_stale_files_and_removes_dates_that_lost_their_rows(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {DAYS[0]: 2, DAYS[1]: 3})
    out = tmp_path / "out"
    assert (
        phase4("export", "--start", str(DAYS[0]), "--end", str(DAYS[1]), "--out", str(out))[0] == 0
    )
    day_dir = dataset(out, ML_FEATURE_STORE_V2) / f"game_date={DAYS[1]}"
    (day_dir / "part-1.parquet").write_bytes(b"left by an older exporter")
    seed(warehouse_url, {DAYS[0]: 0, DAYS[1]: 1})
    code, printed = phase4(
        "export", "--start", str(DAYS[0]), "--end", str(DAYS[1]), "--out", str(out)
    )
    assert code == 0, printed
    assert "1 stale date(s) removed" in printed
    assert sorted(p.name for p in day_dir.iterdir()) == ["part-0.parquet"]
    assert pl.read_parquet(day_dir / "part-0.parquet").height == 1
    assert not (dataset(out, ML_FEATURE_STORE_V2) / f"game_date={DAYS[0]}").exists()
    # --date is a one-date range: a date outside it is left as exported before.
    seed(warehouse_url, {DAYS[0]: 2, DAYS[1]: 1})
    assert (
        phase4("export", "--start", str(DAYS[0]), "--end", str(DAYS[1]), "--out", str(out))[0] == 0
    )
    seed(warehouse_url, {DAYS[0]: 0, DAYS[1]: 4})
    assert phase4("export", "--date", str(DAYS[1]), "--out", str(out))[0] == 0
    read = pl.scan_parquet(dataset(out, ML_FEATURE_STORE_V2), hive_partitioning=True).collect()
    assert read.group_by("game_date").len().sort("game_date").rows() == [(DAYS[0], 2), (DAYS[1], 4)]


def test_a_date_that_cannot_be_written_keeps_its_previous_file(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {D: 2})
    out = tmp_path / "out"
    export_range(open_warehouse(warehouse_url), D, D, out)
    target = dataset(out, ML_FEATURE_STORE_V2) / f"game_date={D}" / "part-0.parquet"
    before = target.read_bytes()
    broken = rows_for(ML_FEATURE_STORE_V2, D, ["a", "b"]).with_columns(
        feature_quality_score=pl.lit(None, dtype=pl.Float64)
    )
    with pytest.raises(ValueError, match="feature_quality_score: NULL in a NOT NULL column"):
        write_date(out, ML_FEATURE_STORE_V2, D, broken)
    assert target.read_bytes() == before
    assert not any((out / STAGING_DIR).iterdir())


def test_an_export_clears_what_a_killed_export_staged_but_not_a_running_ones(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {D: 2})
    out, gone = tmp_path / "out", subprocess.Popen(["true"])
    gone.wait()  # a pid that runs no more: an export killed before its rename
    staging = out / STAGING_DIR
    staging.mkdir(parents=True)
    killed, running = staging / f"{gone.pid}-a.parquet", staging / f"{os.getpid()}-b.parquet"
    killed.write_bytes(b"half a file")
    running.write_bytes(b"being written")
    export_range(open_warehouse(warehouse_url), D, D, out)
    assert not killed.exists() and running.read_bytes() == b"being written"
    running.unlink()
    export_range(open_warehouse(warehouse_url), D, D, out)
    assert not staging.exists()


def test_bad_ranges_and_a_missing_warehouse_are_refused_without_creating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "warehouse.duckdb"
    monkeypatch.setenv("PHASE4_WAREHOUSE", f"duckdb://{missing}")
    out = tmp_path / "out"
    code, printed = phase4("export", "--date", str(D), "--out", str(out))
    assert code == 2 and f"no warehouse at {missing}" in printed
    assert not missing.parent.exists()
    code, printed = phase4("export", "--start", str(D), "--end", str(DAYS[0]), "--out", str(out))
    assert code == 2 and "is before --start" in printed
    code, printed = phase4("export", "--date", str(D), "--start", str(D), "--out", str(out))
    assert code == 2 and "either --date or --start/--end" in printed
    assert set(OUTPUT_TABLES) and not out.exists()


def test_a_linked_date_folder_is_refused_and_nothing_outside_out_is_touched(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {D: 2})
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    (elsewhere / "part-0.parquet").write_text("not ours")
    linked = dataset(out, ML_FEATURE_STORE_V2) / f"game_date={D}"
    linked.parent.mkdir(parents=True)
    linked.symlink_to(elsewhere, target_is_directory=True)
    code, printed = phase4("export", "--date", str(D), "--out", str(out))
    assert code == 2
    assert f"{linked} is a symbolic link: export never writes through links inside --out" in (
        " ".join(printed.split())
    )
    assert sorted(p.name for p in elsewhere.iterdir()) == ["part-0.parquet", "precious.txt"]
    assert (elsewhere / "part-0.parquet").read_text() == "not ours"
    assert not dataset(out, TEAM_DEFENSE_ZONE_ANALYSIS).exists()  # checked before any write
    # A linked dataset folder too.
    linked.unlink()
    dataset(out, ML_FEATURE_STORE_V2).rmdir()
    dataset(out, ML_FEATURE_STORE_V2).symlink_to(elsewhere, target_is_directory=True)
    assert phase4("export", "--date", str(D), "--out", str(out))[0] == 2
    assert sorted(p.name for p in elsewhere.iterdir()) == ["part-0.parquet", "precious.txt"]


def test_a_table_the_warehouse_lacks_leaves_its_folders_alone(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {D: 2})
    out = tmp_path / "out"
    assert phase4("export", "--date", str(D), "--out", str(out))[0] == 0
    kept = dataset(out, ML_FEATURE_STORE_V2) / f"game_date={D}" / "part-0.parquet"
    assert pl.read_parquet(kept).height == 2
    with duckdb.connect(warehouse_url.removeprefix("duckdb://")) as con:
        con.execute(f"DROP TABLE {ML_FEATURE_STORE_V2.full_name}")
    code, printed = phase4("export", "--date", str(D), "--out", str(out))
    assert code == 0, printed
    flat = " ".join(printed.split())
    assert (
        f"{dataset(out, ML_FEATURE_STORE_V2)}: the warehouse has no "
        f"{ML_FEATURE_STORE_V2.full_name}; nothing written or removed"
    ) in flat
    assert pl.read_parquet(kept).height == 2


def test_a_date_without_rows_loses_only_the_file_an_export_wrote(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {D: 2})
    out = tmp_path / "out"
    assert phase4("export", "--date", str(D), "--out", str(out))[0] == 0
    day_dir = dataset(out, ML_FEATURE_STORE_V2) / f"game_date={D}"
    (day_dir / "notes.txt").write_text("mine")
    seed(warehouse_url, {D: 0})
    code, printed = phase4("export", "--date", str(D), "--out", str(out))
    assert code == 0, printed
    assert sorted(p.name for p in day_dir.iterdir()) == ["notes.txt"]


def test_out_must_be_a_folder_and_dates_must_lie_in_the_loaded_seasons(
    warehouse_url: str, tmp_path: Path
) -> None:
    seed(warehouse_url, {D: 1})
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, printed = phase4("export", "--date", str(D), "--out", str(a_file))
    assert code == 2 and f"--out {a_file} is a file: name a folder" in " ".join(printed.split())
    code, printed = phase4("export", "--start", "1925-01-01", "--end", str(D), "--out", "o")
    assert code == 2
    assert (
        "--start 1925-01-01 is before the first season loaded; the warehouse holds season(s) "
        "2024-25: give dates from 2024-08-01 to 2025-07-31"
    ) in " ".join(printed.split())
    code, printed = phase4("export", "--start", str(D), "--end", "9999-12-31", "--out", "o")
    assert code == 2
    assert "--end 9999-12-31: out of range; give a date from 1900-01-01 to 2999-12-31" in (
        " ".join(printed.split())
    )
    assert not Path("o").exists()


def test_a_row_from_before_the_60_features_names_the_column_and_the_rebuild(
    warehouse_url: str, tmp_path: Path
) -> None:
    """`warehouse init` adds SPEC 16's columns as nullable; an older row then reads NULL in a
    NOT NULL column: one line naming it and the backfill that rebuilds the date, exit 2, and
    nothing exported (P5 is the last table: P1 to P4 were written before it was read)."""
    seed(warehouse_url, {D: 2})
    with duckdb.connect(warehouse_url.removeprefix("duckdb://")) as con:
        table = "nba_predictions.ml_feature_store_v2"
        con.execute(f"ALTER TABLE {table} ALTER COLUMN feature_sources_json DROP NOT NULL")
        con.execute(f"UPDATE {table} SET feature_sources_json = NULL")
    out = tmp_path / "out"
    code, printed = phase4("export", "--date", str(D), "--out", str(out))
    assert code == 2, printed
    assert (
        "nba_predictions.ml_feature_store_v2.feature_sources_json: NULL in a NOT NULL column "
        f"(2 row(s) of {D}..{D}, written before the column existed?): rebuild with `phase4 "
        f"backfill --start {D} --end {D} --force`, then export again" in printed
    )
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


def test_ctrl_c_mid_export_says_which_files_it_wrote_and_leaves_no_staging(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said `nothing more is written; a write under way rolled back whole` of an export
    that had written whole tables, and left its empty staging folder behind."""
    import signal

    import tasks.export

    seed(warehouse_url, dict.fromkeys(DAYS, 2))
    out = tmp_path / "out"

    def ctrl_c_at_p5s_second(out: Path, schema: TableSchema, day: date, frame: pl.DataFrame) -> Any:
        if schema is ML_FEATURE_STORE_V2 and day == DAYS[1]:  # P1's 3 files, P5's first
            os.kill(os.getpid(), signal.SIGINT)  # pressed as the next file is staged
        return write_date(out, schema, day, frame)

    monkeypatch.setattr(tasks.export, "write_date", ctrl_c_at_p5s_second)
    code, printed = phase4(
        "export", "--start", str(DAYS[0]), "--end", str(DAYS[-1]), "--out", str(out)
    )
    assert code == 130, printed
    assert (
        f"error: interrupted after the write committed: 4 date file(s) of "
        f"team_defense_zone_analysis, ml_feature_store_v2 under {out}, each whole; export again "
        "for the rest"
    ) in " ".join(printed.split())
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert files == [
        *(
            f"nba_precompute.team_defense_zone_analysis/analysis_date={d}/part-0.parquet"
            for d in DAYS
        ),
        f"nba_predictions.ml_feature_store_v2/game_date={DAYS[0]}/part-0.parquet",
    ]
    assert not (out / STAGING_DIR).exists()


def test_every_column_a_consumer_reads_is_described() -> None:
    """Exports and BigQuery carry each column's description: 38 columns had none."""
    from quality.schemas import ML_FEATURE_CHECKS, OUTPUT_TABLES, PROCESSOR_RUNS

    for schema in (*OUTPUT_TABLES.values(), ML_FEATURE_CHECKS, PROCESSOR_RUNS):
        assert [c.name for c in schema.columns if not c.description] == [], schema.name
