"""The synthetic season must look like real Phase 3 data: same schemas, same invariants.

The season is generated once per module (about a second); every test reads that one copy.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from demo_data import SCHEMAS, TEAMS, demo_slate_date, generate_season
from tests.builders import day_of, number

REAL_SEASON = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "season_2023_24"
SEASON = 2024
KEYS = {
    "player_game_summary": ("player_lookup", "game_id"),
    "team_defense_game_summary": ("defending_team_abbr", "game_id"),
    "team_offense_game_summary": ("team_abbr", "game_id"),
    "upcoming_player_game_context": ("player_lookup", "game_date"),
    "upcoming_team_game_context": ("team_abbr", "game_date"),
}
ZONES = ("paint", "mid_range", "three_pt")


@pytest.fixture(scope="module")
def season() -> dict[str, pl.DataFrame]:
    return generate_season(seed=7, season_year=SEASON)


@pytest.fixture(scope="module")
def box(season: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return season["player_game_summary"]


@pytest.fixture(scope="module")
def offense(season: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return season["team_offense_game_summary"]


def qualifying(box: pl.DataFrame) -> pl.DataFrame:
    return box.filter(pl.col("is_active") & ~pl.col("is_dnp") & (pl.col("minutes_played") > 0))


# --- shape ----------------------------------------------------------------------------------


def test_returns_the_five_tables(season: dict[str, pl.DataFrame]) -> None:
    assert list(season) == list(KEYS)


@pytest.mark.parametrize("table", list(KEYS))
def test_schema_equals_the_real_file(season: dict[str, pl.DataFrame], table: str) -> None:
    path = REAL_SEASON / f"nba_analytics.{table}.parquet"
    assert path.exists(), f"{path} not found: the tests need ../shared beside the clone"
    real = pl.scan_parquet(path).collect_schema()
    assert list(season[table].schema.items()) == list(real.items())
    assert season[table].schema == pl.Schema(SCHEMAS[table])


@pytest.mark.parametrize("table", list(KEYS))
def test_keys_are_unique_and_not_null(season: dict[str, pl.DataFrame], table: str) -> None:
    frame = season[table]
    key = list(KEYS[table])
    assert frame.select(key).null_count().sum_horizontal().item() == 0
    assert not frame.select(key).is_duplicated().any()


@pytest.mark.parametrize("table", list(KEYS))
def test_season_year_and_processed_at(season: dict[str, pl.DataFrame], table: str) -> None:
    frame = season[table]
    assert frame["season_year"].unique().to_list() == [SEASON]
    context = table.startswith("upcoming")
    offset = timedelta(days=-1, hours=15) if context else timedelta(days=1, hours=3, minutes=30)
    expected = (pl.col("game_date").cast(pl.Datetime("us")) + offset).dt.replace_time_zone("UTC")
    assert frame.select((pl.col("processed_at") == expected).all()).item()


def test_passes_the_project_input_contract(season: dict[str, pl.DataFrame]) -> None:
    from quality.contracts import check_columns, check_rows
    from quality.schemas import PHASE3_TABLES

    for table, frame in season.items():
        schema = PHASE3_TABLES[table]
        check_columns(schema, frame.to_arrow().schema, None)
        check_rows(schema, frame.select(schema.column_names), None)


# --- schedule -------------------------------------------------------------------------------


def test_thirty_real_teams_82_games_41_at_home(offense: pl.DataFrame) -> None:
    games = offense.group_by("team_abbr").agg(pl.len(), pl.col("home_game").sum())
    assert sorted(games["team_abbr"]) == sorted(TEAMS) and len(TEAMS) == 30
    assert games["len"].unique().to_list() == [82]
    assert games["home_game"].unique().to_list() == [41]


def test_every_game_has_one_home_and_one_away_team(offense: pl.DataFrame) -> None:
    games = offense.group_by("game_id").agg(
        pl.len(), pl.col("home_game").sum(), pl.col("team_abbr")
    )
    assert games.height == 1230
    assert games["len"].unique().to_list() == [2] and games["home_game"].unique().to_list() == [1]
    assert offense["game_id"].str.contains(r"^00224\d{5}$").all()
    pairs = offense.join(
        offense, left_on=["game_id", "opponent_team_abbr"], right_on=["game_id", "team_abbr"]
    )
    assert (pairs["team_abbr"] == pairs["opponent_team_abbr_right"]).all()


def test_no_team_plays_twice_a_day(offense: pl.DataFrame) -> None:
    assert not offense.select("team_abbr", "game_date").is_duplicated().any()


def test_season_runs_late_october_to_mid_april_with_an_all_star_break(
    offense: pl.DataFrame,
) -> None:
    first, last = day_of(offense["game_date"].min()), day_of(offense["game_date"].max())
    assert date(SEASON, 10, 18) <= first <= date(SEASON, 10, 31)
    assert date(SEASON + 1, 4, 5) <= last <= date(SEASON + 1, 4, 20)
    played = set(offense["game_date"].to_list())
    february = [date(SEASON + 1, 2, 1) + timedelta(days=k) for k in range(28)]
    longest, run = 0, 0
    for day in february:
        run = 0 if day in played else run + 1
        longest = max(longest, run)
    assert longest >= 5


def test_back_to_back_share_is_realistic(offense: pl.DataFrame) -> None:
    by_team = offense.sort("team_abbr", "game_date").with_columns(
        gap=pl.col("game_date").diff().over("team_abbr").dt.total_days()
    )
    share = (by_team["gap"] == 1).sum() / by_team.height
    assert 0.08 <= share <= 0.25
    assert number(by_team["gap"].drop_nulls().min()) >= 1


def test_demo_slate_date_has_games(offense: pl.DataFrame) -> None:
    slate = demo_slate_date(SEASON)
    assert slate == date(SEASON + 1, 1, 15)
    assert offense.filter(pl.col("game_date") == slate).height >= 4


# --- box scores -----------------------------------------------------------------------------


def test_league_zone_percentages(box: pl.DataFrame) -> None:
    sums = box.select(pl.col(f"{z}_{k}").sum() for z in ZONES for k in ("attempts", "makes"))
    for zone, target in zip(ZONES, (0.58, 0.41, 0.36), strict=True):
        pct = sums[f"{zone}_makes"].item() / sums[f"{zone}_attempts"].item()
        assert abs(pct - target) <= 0.03, zone


def test_box_identities(box: pl.DataFrame) -> None:
    assert (box["fg_attempts"] == sum(box[f"{z}_attempts"] for z in ZONES)).all()
    assert (box["fg_makes"] == sum(box[f"{z}_makes"] for z in ZONES)).all()
    points = 2 * (box["paint_makes"] + box["mid_range_makes"]) + 3 * box["three_pt_makes"]
    assert (box["points"] == points + box["ft_makes"]).all()
    for made, tried in [("fg", "fg"), ("ft", "ft"), *((z, z) for z in ZONES)]:
        assert (box[f"{made}_makes"] <= box[f"{tried}_attempts"]).all()
    counts = [c for c, t in box.schema.items() if t == pl.Int64]
    assert box.select(pl.min_horizontal(counts).min()).item() >= 0
    known = box.filter(pl.col("assisted_fg_makes").is_not_null())
    assert known.height > 0.9 * box.height
    assert (known["assisted_fg_makes"] + known["unassisted_fg_makes"] == known["fg_makes"]).all()


def test_usage_and_ts_pct(box: pl.DataFrame) -> None:
    played = box.filter(pl.col("minutes_played") > 0)
    assert played["usage_rate"].null_count() == 0
    assert box.filter(pl.col("minutes_played") == 0)["usage_rate"].null_count() == (
        box.filter(pl.col("minutes_played") == 0).height
    )
    denominator = 2 * (box["fg_attempts"] + 0.44 * box["ft_attempts"])
    expected = (box["points"] / denominator).fill_nan(None)
    assert ((box["ts_pct"] - expected).abs() < 1e-9).fill_null(True).all()
    assert box.filter(denominator == 0)["ts_pct"].null_count() == (denominator == 0).sum()


def test_minutes_and_rotation_per_team_game(box: pl.DataFrame) -> None:
    team_games = box.group_by("team_abbr", "game_id").agg(
        pl.col("minutes_played").sum(), (pl.col("minutes_played") > 0).sum().alias("played")
    )
    assert team_games["minutes_played"].is_between(238, 267).all()
    assert team_games["played"].is_between(8, 13).all()
    assert 9 <= number(team_games["played"].mean()) <= 11


def test_stars_score_more_than_the_bench(box: pl.DataFrame) -> None:
    ppg = qualifying(box).group_by("player_lookup").agg(pl.col("points").mean(), pl.len())
    regulars = ppg.filter(pl.col("len") >= 40).sort("points", descending=True)
    assert 20 <= regulars["points"][0] <= 34
    assert number(regulars["points"].median()) < 14


def test_dnp_rows(box: pl.DataFrame, season: dict[str, pl.DataFrame]) -> None:
    dnp = box.filter(pl.col("is_dnp"))
    assert dnp.height > 0
    assert not dnp["is_active"].any()
    assert (dnp["minutes_played"] == 0).all() and (dnp["points"] == 0).all()
    assert (dnp["fg_attempts"] == 0).all() and (dnp["ft_attempts"] == 0).all()
    context = season["upcoming_player_game_context"]
    out = context.filter(pl.col("player_status") == "out").join(
        box, on=["player_lookup", "game_id"]
    )
    assert out.height > 0 and out["is_dnp"].all()


def test_win_flags_agree(box: pl.DataFrame, offense: pl.DataFrame) -> None:
    points = box.group_by("team_abbr", "game_id").agg(pl.col("points").sum())
    joined = offense.join(points, on=["team_abbr", "game_id"])
    assert (joined["points_scored"] == joined["points"]).all()
    assert offense.group_by("game_id").agg(pl.col("win_flag").sum())["win_flag"].eq(1).all()
    flags = box.join(offense, on=["team_abbr", "game_id"])
    assert (flags["win_flag"] == flags["win_flag_right"]).all()


def test_trades_and_player_identity(box: pl.DataFrame) -> None:
    teams = box.group_by("player_lookup").agg(pl.col("team_abbr").n_unique())
    assert teams.filter(pl.col("team_abbr") > 1).height >= 3
    assert box["player_lookup"].str.contains(r"^[a-z]+$").all()
    ids = box.select("player_lookup", "universal_player_id").unique()
    assert ids.height == box["player_lookup"].n_unique()
    assert (ids["universal_player_id"].str.extract(r"^([a-z]+)_\d+$") == ids["player_lookup"]).all()
    assert not box.select("player_lookup", "game_date").is_duplicated().any()


def test_about_450_players_active_in_a_mid_season_month(box: pl.DataFrame) -> None:
    slate = demo_slate_date(SEASON)
    recent = qualifying(box).filter(pl.col("game_date").is_between(slate - timedelta(30), slate))
    assert 430 <= recent["player_lookup"].n_unique() <= 490


# --- team tables ----------------------------------------------------------------------------


def test_team_defense_equals_opponent_player_sums(
    season: dict[str, pl.DataFrame], box: pl.DataFrame
) -> None:
    cols = [f"{z}_{k}" for z in ZONES for k in ("attempts", "makes")] + ["points"]
    sums = box.group_by("team_abbr", "game_id").agg(pl.col(cols).sum())
    defense = season["team_defense_game_summary"].join(
        sums, left_on=["opponent_team_abbr", "game_id"], right_on=["team_abbr", "game_id"]
    )
    assert defense.height == 2460
    for col in cols[:-1]:
        assert (defense[f"opp_{col}"] == defense[col]).all(), col
    assert (defense["points_allowed"] == defense["points"]).all()
    assert (defense["points_in_paint_allowed"] == 2 * defense["opp_paint_makes"]).all()
    assert (defense["three_pt_points_allowed"] == 3 * defense["opp_three_pt_makes"]).all()
    assert defense["opponent_pace"].is_between(85, 115).all()
    assert defense["defensive_rating"].is_between(60, 170).all()


def test_team_offense_is_consistent(offense: pl.DataFrame) -> None:
    rating = offense["points_scored"] / offense["possessions"] * 100
    assert ((offense["offensive_rating"] - rating).abs() < 1e-9).all()
    assert offense["pace"].is_between(85, 115).all()
    assert 97 <= number(offense["pace"].mean()) <= 104
    assert 0.5 <= number(offense.filter("home_game")["win_flag"].mean()) <= 0.62


# --- context tables: point in time ----------------------------------------------------------


def test_player_context_mirrors_the_box(season: dict[str, pl.DataFrame], box: pl.DataFrame) -> None:
    context = season["upcoming_player_game_context"]
    cols = ["player_lookup", "game_id", "game_date", "team_abbr", "opponent_team_abbr"]
    assert context.select(cols).sort(cols).equals(box.select(cols).sort(cols))
    assert context["season_phase"].unique().to_list() == ["regular_season"]
    assert context["star_teammates_out"].is_between(0, 2).all()
    assert context["player_age"].is_between(19, 39).all()
    assert context.filter(pl.col("player_age") >= 35)["player_lookup"].n_unique() >= 2
    statuses = set(context["player_status"].unique())
    assert statuses <= {"available", "probable", "questionable", "doubtful", "out"}
    assert {"available", "out"} <= statuses


def test_player_history_matches_a_naive_recomputation(
    season: dict[str, pl.DataFrame], box: pl.DataFrame
) -> None:
    games: dict[str, list[tuple[date, float, float]]] = {}
    for row in qualifying(box).sort("game_date").iter_rows(named=True):
        games.setdefault(row["player_lookup"], []).append(
            (row["game_date"], row["minutes_played"], row["usage_rate"])
        )
    context = season["upcoming_player_game_context"]
    sample = random.Random(1).sample(range(context.height), 300)
    for row in context[sample].iter_rows(named=True):
        day = row["game_date"]
        before = [g for g in games.get(row["player_lookup"], []) if g[0] < day]
        week = [g for g in before if g[0] >= day - timedelta(days=7)]
        fortnight = [g for g in before if g[0] >= day - timedelta(days=14)]
        rest = (day - before[-1][0]).days - 1 if before else None
        assert row["days_rest"] == rest, row
        assert row["back_to_back"] == (rest == 0)
        assert row["games_in_last_7_days"] == len(week)
        assert row["games_in_last_14_days"] == len(fortnight)
        assert row["minutes_in_last_7_days"] == pytest.approx(sum(g[1] for g in week))
        usage = [g[2] for g in before[-7:]]
        expected = sum(usage) / len(usage) if usage else None
        assert row["avg_usage_rate_last_7_games"] == pytest.approx(expected)


def test_team_context_matches_a_naive_recomputation(
    season: dict[str, pl.DataFrame], offense: pl.DataFrame
) -> None:
    context = season["upcoming_team_game_context"]
    assert context.height == offense.height
    dates: dict[str, list[date]] = {}
    for team, day in offense.sort("game_date").select("team_abbr", "game_date").iter_rows():
        dates.setdefault(team, []).append(day)
    for row in context.sample(200, seed=3).iter_rows(named=True):
        before = [d for d in dates[row["team_abbr"]] if d < row["game_date"]]
        rest = (row["game_date"] - before[-1]).days - 1 if before else None
        assert row["team_days_rest"] == rest
        assert row["team_back_to_back"] == (rest == 0)
        week = [d for d in before if d >= row["game_date"] - timedelta(days=7)]
        assert row["games_in_last_7_days"] == len(week)


def test_pace_context_uses_only_earlier_games(
    season: dict[str, pl.DataFrame], offense: pl.DataFrame
) -> None:
    context = season["upcoming_player_game_context"].sample(200, seed=5)
    for row in context.iter_rows(named=True):
        earlier = offense.filter(
            (pl.col("team_abbr") == row["opponent_team_abbr"])
            & (pl.col("game_date") < row["game_date"])
        ).sort("game_date")
        expected = earlier["pace"].tail(10).mean() if earlier.height else None
        assert row["opponent_pace_last_10"] == pytest.approx(expected)


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_frames_other_seed_other_data(season: dict[str, pl.DataFrame]) -> None:
    again = generate_season(seed=7, season_year=SEASON)
    for table, frame in season.items():
        assert frame.equals(again[table]), table
    other = generate_season(seed=8, season_year=SEASON)
    assert not other["player_game_summary"].equals(season["player_game_summary"])
    assert not other["team_offense_game_summary"].equals(season["team_offense_game_summary"])
