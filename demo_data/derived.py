"""Phase 3 tables derived from the simulated box scores the way Phase 3 does, point in time:
a context row for D only uses games strictly before D."""

from __future__ import annotations

import random
from datetime import timedelta

import polars as pl


def _at(days: int, hours: int, minutes: int = 0) -> pl.Expr:
    """processed_at relative to game_date: summaries the night after, contexts the day before."""
    offset = pl.duration(days=days, hours=hours, minutes=minutes)
    return (pl.col("game_date").cast(pl.Datetime("us")) + offset).dt.replace_time_zone("UTC")


def _safe_ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """NULL instead of infinity or NaN when the denominator is 0 (SPEC section 3)."""
    return pl.when(den != 0).then(num / den)


def team_totals(raw: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """Team box totals from the player lines, so team and player tables always agree."""
    zone = ["paint", "mid_range", "three_pt"]
    totals = raw.group_by("team_abbr", "game_id").agg(
        *[pl.col(f"{z}_{k}").sum() for z in zone for k in ("attempts", "makes")],
        pl.col("ft_attempts", "ft_makes", "turnovers").sum(),
    )
    totals = facts.join(totals, on=["team_abbr", "game_id"], how="left").with_columns(
        fg_attempts=pl.sum_horizontal(f"{z}_attempts" for z in zone),
        fg_makes=pl.sum_horizontal(f"{z}_makes" for z in zone),
        points_scored=2 * (pl.col("paint_makes") + pl.col("mid_range_makes"))
        + 3 * pl.col("three_pt_makes")
        + pl.col("ft_makes"),
    )
    totals = totals.with_columns(
        possessions=pl.col("fg_attempts")
        - pl.col("oreb")
        + pl.col("turnovers")
        + 0.44 * pl.col("ft_attempts")
    )
    opponent = totals.select(
        "game_id",
        pl.col("team_abbr").alias("opponent_team_abbr"),
        pl.col("possessions").alias("opp_possessions"),
        pl.col("points_scored").alias("opp_points"),
    )
    return totals.join(opponent, on=["game_id", "opponent_team_abbr"], how="left").with_columns(
        pace=(pl.col("possessions") + pl.col("opp_possessions"))
        / 2
        * 48
        / (pl.col("team_minutes") / 5),
        offensive_rating=pl.col("points_scored") / pl.col("possessions") * 100,
        win_flag=pl.col("points_scored") > pl.col("opp_points"),
    )


def player_game_summary(raw: pl.DataFrame, totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
    """The player box with usage (team-relative), TS% and the team's result."""
    team = totals.select(
        "team_abbr",
        "game_id",
        "team_minutes",
        "win_flag",
        (pl.col("fg_attempts") + 0.44 * pl.col("ft_attempts") + pl.col("turnovers")).alias("plays"),
    )
    fga = pl.sum_horizontal("paint_attempts", "mid_range_attempts", "three_pt_attempts")
    fgm = pl.sum_horizontal("paint_makes", "mid_range_makes", "three_pt_makes")
    frame = raw.join(team, on=["team_abbr", "game_id"], how="left").with_columns(
        season_year=pl.lit(season_year, pl.Int64),
        is_dnp=~pl.col("is_active"),
        fg_attempts=fga,
        fg_makes=fgm,
        points=2 * (pl.col("paint_makes") + pl.col("mid_range_makes"))
        + 3 * pl.col("three_pt_makes")
        + pl.col("ft_makes"),
        assisted_fg_makes=pl.when(pl.col("assists_known")).then(pl.col("assisted")),
        unassisted_fg_makes=pl.when(pl.col("assists_known")).then(fgm - pl.col("assisted")),
        processed_at=_at(1, 3, 30),
    )
    own_plays = pl.col("fg_attempts") + 0.44 * pl.col("ft_attempts") + pl.col("turnovers")
    frame = frame.with_columns(
        usage_rate=_safe_ratio(
            100 * own_plays * pl.col("team_minutes") / 5,
            pl.col("minutes_played") * pl.col("plays"),
        ),
        ts_pct=_safe_ratio(
            pl.col("points").cast(pl.Float64),
            2 * (pl.col("fg_attempts") + 0.44 * pl.col("ft_attempts")),
        ),
    )
    return frame.sort("game_date", "game_id", "team_abbr", "player_lookup")


def team_offense_game_summary(totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
    return totals.with_columns(
        season_year=pl.lit(season_year, pl.Int64), processed_at=_at(1, 3, 30)
    ).sort("game_date", "game_id", "home_game", descending=[False, False, True])


def team_defense_game_summary(totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
    """Each team-game seen from the defending side: the opponent's shooting by zone."""
    zone = ["paint", "mid_range", "three_pt", "fg"]
    offense = totals.select(
        "game_id",
        pl.col("team_abbr").alias("opponent_team_abbr"),
        pl.col("points_scored").alias("points_allowed"),
        *[pl.col(f"{z}_{k}").alias(f"opp_{z}_{k}") for z in zone for k in ("attempts", "makes")],
        pl.col("possessions").alias("opp_possessions"),
    )
    defense = totals.select(
        "game_id",
        "game_date",
        "team_abbr",
        "opponent_team_abbr",
        "home_game",
        "win_flag",
        "pace",
        "blocks_paint",
        "blocks_mid_range",
        "blocks_three_pt",
    ).join(offense, on=["game_id", "opponent_team_abbr"], how="left")
    return defense.with_columns(
        season_year=pl.lit(season_year, pl.Int64),
        defending_team_abbr=pl.col("team_abbr"),
        points_in_paint_allowed=2 * pl.col("opp_paint_makes"),
        mid_range_points_allowed=2 * pl.col("opp_mid_range_makes"),
        three_pt_points_allowed=3 * pl.col("opp_three_pt_makes"),
        defensive_rating=pl.col("points_allowed") / pl.col("opp_possessions") * 100,
        opponent_pace=pl.col("pace"),
        processed_at=_at(1, 3, 30),
    ).sort("game_date", "game_id", "home_game", descending=[False, False, True])


def _last_n_mean(column: str, n: int) -> pl.Expr:
    """Mean of the team's previous n games (this one excluded): point in time."""
    return pl.col(column).shift(1).rolling_mean(window_size=n, min_samples=1).over("team_abbr")


def upcoming_team_game_context(totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
    """Rest, schedule density and pre-game lines per team-game, from earlier games only."""
    by_team = totals.sort("team_abbr", "game_date")
    prev = pl.col("game_date").shift(1).over("team_abbr")
    in_last_7 = [
        (pl.col("game_date").shift(k).over("team_abbr") >= pl.col("game_date") - timedelta(days=7))
        .fill_null(False)
        .cast(pl.Int64)
        for k in range(1, 5)
    ]
    frame = by_team.with_columns(
        team_days_rest=(pl.col("game_date") - prev).dt.total_days() - 1,
        games_in_last_7_days=pl.sum_horizontal(in_last_7),
        pace_last_10=_last_n_mean("pace", 10),
        points_last_10=_last_n_mean("points_scored", 10),
        margin_last_10=(pl.col("points_scored") - pl.col("opp_points"))
        .shift(1)
        .rolling_mean(window_size=10, min_samples=1)
        .over("team_abbr"),
    ).with_columns(team_back_to_back=(pl.col("team_days_rest") == 0).fill_null(False))
    opponent = frame.select(
        "game_id",
        pl.col("team_abbr").alias("opponent_team_abbr"),
        pl.col("team_days_rest").alias("opponent_days_rest"),
        pl.col("pace_last_10").alias("opponent_pace_last_10"),
        pl.col("points_last_10").alias("opp_points_last_10"),
        pl.col("margin_last_10").alias("opp_margin_last_10"),
    )
    home_edge = pl.when(pl.col("home_game")).then(1.5).otherwise(-1.5)
    edge = (pl.col("margin_last_10") - pl.col("opp_margin_last_10")) / 2 + home_edge
    return (
        frame.join(opponent, on=["game_id", "opponent_team_abbr"], how="left")
        .with_columns(
            season_year=pl.lit(season_year, pl.Int64),
            game_spread=(-edge * 2).round() / 2,
            game_total=((pl.col("points_last_10") + pl.col("opp_points_last_10")) * 2).round() / 2,
            processed_at=_at(-1, 15),
        )
        .sort("game_date", "game_id", "home_game", descending=[False, False, True])
    )


def _history(keys: pl.DataFrame, summary: pl.DataFrame) -> pl.DataFrame:
    """Per (player, D): figures over the player's qualifying games strictly before D."""
    games = (
        summary.filter(pl.col("is_active") & ~pl.col("is_dnp") & (pl.col("minutes_played") > 0))
        .select(
            "player_lookup",
            pl.col("game_date").alias("played"),
            "minutes_played",
            "usage_rate",
            "points",
        )
        .sort("player_lookup", "played")
        .with_columns(
            second_of_b2b=(
                (pl.col("played") - pl.col("played").shift(1).over("player_lookup"))
                == timedelta(days=1)
            ).fill_null(False)
        )
    )
    pairs = keys.join(games, on="player_lookup").filter(pl.col("played") < pl.col("game_date"))
    ago = (pl.col("game_date") - pl.col("played")).dt.total_days()
    return pairs.group_by("player_lookup", "game_date").agg(
        last_played=pl.col("played").max(),
        games_in_last_7_days=(ago <= 7).sum().cast(pl.Int64),
        games_in_last_14_days=(ago <= 14).sum().cast(pl.Int64),
        minutes_in_last_7_days=pl.col("minutes_played").filter(ago <= 7).sum(),
        minutes_in_last_14_days=pl.col("minutes_played").filter(ago <= 14).sum(),
        back_to_backs_last_14_days=(pl.col("second_of_b2b") & (ago <= 14)).sum().cast(pl.Int64),
        avg_usage_rate_last_7_games=pl.col("usage_rate")
        .sort_by("played", descending=True)
        .head(7)
        .mean(),
        season_ppg=pl.col("points").mean(),
        season_games=pl.len(),
    )


def upcoming_player_game_context(
    raw: pl.DataFrame,
    summary: pl.DataFrame,
    team_context: pl.DataFrame,
    rng: random.Random,
    season_year: int,
) -> pl.DataFrame:
    """One row per box line (DNPs included), history strictly before the game date."""
    keys = summary.select("player_lookup", "game_date")
    facts = raw.select(
        "player_lookup",
        "game_id",
        "home_game",
        "player_status",
        "player_age",
        "star_teammates_out",
    )
    teams = team_context.select(
        "team_abbr", "game_id", "opponent_days_rest", "opponent_pace_last_10", "pace_last_10"
    )
    frame = (
        summary.select(
            "player_lookup",
            "universal_player_id",
            "game_id",
            "game_date",
            "team_abbr",
            "opponent_team_abbr",
        )
        .join(facts, on=["player_lookup", "game_id"], how="left")
        .join(teams, on=["team_abbr", "game_id"], how="left")
        .join(_history(keys, summary), on=["player_lookup", "game_date"], how="left")
        .sort("game_date", "game_id", "team_abbr", "player_lookup")
    )
    noise = pl.Series([rng.gauss(0, 1.5) for _ in range(frame.height)])
    offered = pl.Series([rng.random() < 0.85 for _ in range(frame.height)])
    counts = ["games_in_last_7_days", "games_in_last_14_days", "back_to_backs_last_14_days"]
    frame = frame.with_columns(
        pl.col(counts).fill_null(0),
        pl.col("minutes_in_last_7_days", "minutes_in_last_14_days").fill_null(0.0),
        days_rest=(pl.col("game_date") - pl.col("last_played")).dt.total_days() - 1,
    )
    line_ok = (
        (pl.col("season_games") >= 5)
        & (pl.col("season_ppg") >= 6)
        & (pl.col("player_status") != "out")
        & offered
    )
    return frame.with_columns(
        season_year=pl.lit(season_year, pl.Int64),
        season_phase=pl.lit("regular_season"),
        back_to_back=(pl.col("days_rest") == 0).fill_null(False),
        avg_minutes_per_game_last_7=_safe_ratio(
            pl.col("minutes_in_last_7_days"), pl.col("games_in_last_7_days")
        ),
        fourth_quarter_minutes_last_7=pl.lit(None, pl.Float64),
        projected_usage_rate=pl.col("avg_usage_rate_last_7_games")
        * (1 + 0.06 * pl.col("star_teammates_out")),
        pace_differential=pl.col("pace_last_10") - pl.col("opponent_pace_last_10"),
        current_points_line=pl.when(line_ok).then(
            (pl.col("season_ppg") + noise).floor().clip(lower_bound=0) + 0.5
        ),
        processed_at=_at(-1, 15),
    )
