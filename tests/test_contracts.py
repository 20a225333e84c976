"""The Phase 3 input contract: every rule names the table, column, rule, date and a key."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quality.contracts import (
    InputContractError,
    check_columns,
    conform_input,
    contract_problems,
    typed_for_load,
)
from quality.schemas import (
    PHASE3_TABLES,
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
)
from tests.builders import (
    context_key,
    contexts_frame,
    player_games,
    player_games_frame,
    team_defense,
    team_defense_frame,
)
from tests.conftest import REALDATA

D = date(2025, 1, 15)


def good_players() -> pl.DataFrame:
    return player_games_frame(player_games("curry", date(2025, 1, 14), 3))


def break_player_row(**values: object) -> pl.DataFrame:
    frame = good_players()
    return frame.with_columns(
        [
            pl.when(pl.int_range(pl.len()) == 1)
            .then(pl.lit(v, dtype=frame.schema[k]))
            .otherwise(pl.col(k))
            .alias(k)
            for k, v in values.items()
        ]
    )


def test_valid_input_passes_and_is_typed_as_declared() -> None:
    typed = conform_input(PLAYER_GAME_SUMMARY, good_players().to_arrow(), D)
    assert typed.schema == PLAYER_GAME_SUMMARY.polars_schema


@pytest.mark.parametrize(
    ("values", "column", "rule"),
    [
        ({"player_lookup": None}, "player_lookup", "key must not be NULL"),
        ({"game_id": None}, "game_id", "key must not be NULL"),
        ({"points": -1}, "points", "counts must not be negative"),
        ({"fg_makes": 19}, "fg_makes", "makes above attempts (fg_makes > fg_attempts)"),
        ({"paint_makes": 9}, "paint_makes", "makes above attempts"),
        ({"minutes_played": 81.0}, "minutes_played", "outside 0 to 80"),
        ({"minutes_played": -2.0}, "minutes_played", "outside 0 to 80"),
        # 4e18 points loaded, then a season's sum wrapped to a negative average judged OK.
        ({"points": 4 * 10**18}, "points", "above 1000 in one game"),
        ({"paint_attempts": 1001}, "paint_attempts", "above 1000 in one game"),
        # A key written unlike the other tables' matched nothing: P3 OK, every mismatch 0.0.
        ({"player_lookup": "CURRY"}, "player_lookup", "not written as lowercase letters"),
        ({"player_lookup": "curry "}, "player_lookup", "not written as lowercase letters"),
        ({"team_abbr": "gsw"}, "team_abbr", "not written as 2 to 4 capital letters"),
    ],
)
def test_bad_rows_name_table_column_rule_date_and_key(values: dict, column: str, rule: str) -> None:
    with pytest.raises(InputContractError) as raised:
        conform_input(PLAYER_GAME_SUMMARY, break_player_row(**values).to_arrow(), D)
    message = str(raised.value)
    assert "nba_analytics.player_game_summary" in message
    assert f"column {column}" in message
    assert rule in message
    assert "date 2025-01-15" in message
    assert raised.value.column == column
    if values.get("player_lookup", "x") is not None and values.get("game_id", "x") is not None:
        assert f"player_lookup={values.get('player_lookup', 'curry')}," in message


def test_duplicate_keys_are_rejected_with_the_key() -> None:
    frame = good_players()
    doubled = pl.concat([frame, frame.head(1)])
    with pytest.raises(InputContractError, match=r"duplicate key \(player_lookup, game_id\)") as e:
        conform_input(PLAYER_GAME_SUMMARY, doubled.to_arrow(), D)
    assert f"game_id={frame['game_id'][0]}" in str(e.value)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(
        InputContractError, match="column fg_makes; rule: required column is missing"
    ):
        conform_input(PLAYER_GAME_SUMMARY, good_players().drop("fg_makes").to_arrow(), D)


def test_a_mistyped_column_is_named_with_both_types() -> None:
    bad = good_players().with_columns(pl.col("points").cast(pl.String))
    with pytest.raises(InputContractError, match="column points; rule: wrong type: expected INT64"):
        conform_input(PLAYER_GAME_SUMMARY, bad.to_arrow(), D)


def test_a_wrong_type_in_a_file_says_how_to_write_the_column() -> None:
    bad = good_players().with_columns(pl.col("points").cast(pl.String))
    [problem] = contract_problems(PLAYER_GAME_SUMMARY, bad)
    assert problem.rule.startswith("wrong type: expected INT64, found ")
    assert problem.rule.endswith("; write the column as integers")


def test_categories_are_strings() -> None:
    frame = good_players().with_columns(pl.col("team_abbr").cast(pl.Categorical))
    assert contract_problems(PLAYER_GAME_SUMMARY, frame) == []
    typed = typed_for_load(PLAYER_GAME_SUMMARY, frame.with_columns(notes=pl.lit(None)))
    assert (typed.schema["team_abbr"], typed.schema["notes"]) == (pl.String(), pl.String())


def test_a_missing_table_says_to_load_phase3() -> None:
    with pytest.raises(InputContractError, match="table is missing"):
        check_columns(TEAM_DEFENSE_GAME_SUMMARY, None, D)


def test_team_defense_makes_above_attempts() -> None:
    rows = team_defense("LAL", date(2025, 1, 14), 2)
    rows[1]["opp_three_pt_makes"] = 36
    with pytest.raises(InputContractError, match="opp_three_pt_makes > opp_three_pt_attempts") as e:
        conform_input(TEAM_DEFENSE_GAME_SUMMARY, team_defense_frame(rows).to_arrow(), D)
    assert "defending_team_abbr=LAL" in str(e.value)


def test_integers_are_accepted_where_floats_are_declared() -> None:
    frame = good_players().with_columns(pl.col("minutes_played").cast(pl.Int32))
    typed = conform_input(PLAYER_GAME_SUMMARY, frame.to_arrow(), D)
    assert typed["minutes_played"].dtype == pl.Float64


def test_a_tables_date_column_is_its_partition_column_and_an_unpartitioned_table_has_none() -> None:
    from dataclasses import replace

    from quality.schemas import OUTPUT_TABLES

    found = {name: schema.date_column for name, schema in OUTPUT_TABLES.items()}
    assert found == {  # SPEC 4-8: each processor's partition for D
        "team_defense_zone_analysis": "analysis_date",
        "player_shot_zone_analysis": "analysis_date",
        "player_composite_factors": "game_date",
        "player_daily_cache": "cache_date",
        "ml_feature_store_v2": "game_date",
    }
    unpartitioned = replace(PLAYER_GAME_SUMMARY, partition_column=None)
    with pytest.raises(ValueError, match="nba_analytics.player_game_summary is not partitioned"):
        _ = unpartitioned.date_column


@pytest.mark.parametrize("column", ["universal_player_id", "game_id", "team_abbr"])
def test_the_context_columns_before_opponent_team_abbr_must_hold_a_value(column: str) -> None:
    """SPEC 2: 'Every column after opponent_team_abbr is nullable': a NULL team_abbr loaded
    and was written OK, though the table declares these columns NULLABLE."""
    good = contexts_frame([context_key("curry")])  # every column after them NULL
    assert contract_problems(UPCOMING_PLAYER_GAME_CONTEXT, good) == []
    frame = good.with_columns(pl.lit(None, good.schema[column]).alias(column))
    problems = contract_problems(UPCOMING_PLAYER_GAME_CONTEXT, frame)
    assert [(p.column, p.rule) for p in problems] == [(column, "must not be NULL")]
    assert UPCOMING_PLAYER_GAME_CONTEXT.column(column).mode == "NULLABLE"


def test_both_real_seasons_meet_the_added_rules() -> None:
    """The formats, limits and NULL rules refuse nothing of either real season."""
    for folder in sorted(REALDATA.glob("season_*")):
        for schema in PHASE3_TABLES.values():
            frame = pl.read_parquet(folder / f"{schema.full_name}.parquet")
            assert contract_problems(schema, frame) == [], (folder, schema.name)
