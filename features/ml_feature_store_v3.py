"""SPEC 16.2: features 25 to 59 of P5, the ones the newest worker reads beside the 25 of SPEC 8.

Each feature is a small expression named after it, over per-(player, D) aggregates of the
player's recent games. Windows here are in days (the games of [D - 60, D)), not "the last N
games", so they are not `features.windows.Window`s: every (player, D) pair gets the index range
of its window's games in the player's season sequence (two as-of joins), the ranges are
exploded into (pair, game) rows, and each aggregate is one `group_by` over them. Every date is
built in the same pass; only games before D are ever joined (the range ends at the last game
before D), and the context lines of S dated before D only feed L(g) and feature 54.

Nothing is made up: a value whose input is unknown or whose minimum is not met is NULL, and
P5 tags it 'missing'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from features.common import qualifying_games
from features.windows import latest_before
from quality.schemas import (
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    Phase3Frames,
    TableSchema,
)

WINDOW_DAYS = 60  # Q60, R10 and feature 57 look back this far
RECENT_DAYS = 30  # Q30
LINE_HISTORY_DAYS = 14  # feature 54
STRUCTURAL_GAP_DAYS = 14  # feature 49: a longer gap between two games is a structural change
STRUCTURAL_CAP = 30  # feature 49 without a change: min(n, 30)
BLOWOUT_MARGIN = 15  # feature 57
SLOPE_GAMES, TREND_GAMES, RECENT_GAMES = 10, 7, 3  # features 34, 44, 43
USAGE_GAMES, OVER_GAMES, MARGIN_GAMES = 5, 10, 5  # features 48, 55, 56
DNP_ROWS, VOLATILITY_GAMES = 10, 10  # features 33, 58
PAIR = ["player_lookup", "analysis_date"]
ROW = "row"  # a game's position in the sorted sequence of every entity's seasons
NOT_FOUND = 1 << 30  # an age larger than any window


def with_optional_columns(frame: pl.DataFrame, schema: TableSchema) -> pl.DataFrame:
    """`frame` with the schema's optional columns it lacks, as NULL (SPEC 2: a warehouse
    without current_points_line, game_total or game_spread gives NULL features)."""
    missing = [c for c in schema.columns if c.optional and c.name not in frame.columns]
    return frame.with_columns(pl.lit(None, dtype=c.polars_type).alias(c.name) for c in missing)


# ---------------------------------------------------------------------------------------------
# Inputs as frames: each pair's window of games, exploded.
# ---------------------------------------------------------------------------------------------


def _numbered(rows: pl.LazyFrame, entity: str) -> pl.LazyFrame:
    """Each entity's rows of each season, oldest first (ties: lower game_id first), numbered
    through the whole frame (`row`), so a window is a range of row numbers."""
    return rows.sort(entity, "season_year", "game_date", "game_id").with_row_index(ROW)


def _window(
    pairs: pl.LazyFrame,
    numbered: pl.LazyFrame,
    entity: str,
    days: int,
    newest: int | None = None,
    carry: Sequence[str] = (),
) -> pl.LazyFrame:
    """Every (pair, game) of the entity's season games with D - days <= game_date < D (only
    the `newest` of them, when given), keyed by the pairs' integer `pair_id`, oldest first,
    with `age` (0 = the newest; ties on a date: the higher game_id is newer).

    The window is a range [lo, hi) of `numbered`'s row numbers: hi from the entity's last
    game of the season before D, lo from its first on or after D - days, both by as-of join;
    then exploded and joined on the row number (an integer: cheap, and order-keeping)."""
    row = pl.col(ROW)
    by_date = numbered.group_by(entity, "season_year", "game_date").agg(
        row.min().alias("first_row"), row.max().alias("last_row")
    )
    last = by_date.select(entity, "season_year", "game_date", "last_row")
    bounds = (
        latest_before(pairs, last, [entity, "season_year"])
        .drop("game_date")
        .with_columns((pl.col("analysis_date") - pl.duration(days=days)).alias("window_start"))
        .sort("window_start")
        .join_asof(
            by_date.select(entity, "season_year", "game_date", "first_row").sort("game_date"),
            left_on="window_start",
            right_on="game_date",
            by=[entity, "season_year"],
            strategy="forward",
            check_sortedness=False,
        )
    )
    hi = pl.col("last_row") + 1  # NULL: no game of the season before D
    lo = pl.min_horizontal(pl.col("first_row").fill_null(hi), hi)
    if newest is not None:
        lo = pl.max_horizontal(lo, hi - newest)
    return (
        bounds.filter(pl.col("last_row").is_not_null())
        .select(
            "pair_id", "analysis_date", *carry, hi.alias("hi"), pl.int_ranges(lo, hi).alias(ROW)
        )
        .sort("pair_id")
        .explode(ROW)
        .filter(pl.col(ROW).is_not_null())
        .join(numbered.drop(entity, "season_year"), on=ROW, how="left", maintain_order="left")
        # Each pair's games stay oldest first: a float mean adds them in this order, so a
        # date's bits do not depend on the other dates built with it.
        .with_columns((pl.col("hi") - 1 - pl.col(ROW)).alias("age"))
    )


def _context_lines(player_context: pl.DataFrame) -> pl.LazyFrame:
    """The known lines of the context: L(g) for a game of that date, and feature 54."""
    return (
        player_context.lazy()
        .filter(pl.col("current_points_line").is_not_null())
        .select(
            "player_lookup",
            "season_year",
            "game_date",
            pl.col("current_points_line").cast(pl.Float64).alias("line"),
        )
    )


def _player_pairs(players: pl.LazyFrame) -> pl.LazyFrame:
    """One row per slate (player, D), numbered: the season and the slate's own line (f25)."""
    return (
        players.select(
            *PAIR,
            "season_year",
            pl.col("current_points_line").cast(pl.Float64).alias("slate_line"),
        )
        .unique(subset=PAIR)
        .sort(PAIR)  # pair_id must be the same each time the plan reads the pairs
        .with_row_index("pair_id")
        .cache()  # and it reads them three times
    )


def _player_sequence(player_games: pl.LazyFrame, lines: pl.LazyFrame) -> pl.LazyFrame:
    """The slate players' box rows of each season, oldest first, with what the windows read:
    `q` (a qualifying game), running counts of qualifying games (`qc`), of those with a known
    line (`lc`) and usage (`uc`), inclusive; and the previous qualifying game's team and date."""
    key = ["player_lookup", "season_year"]
    rows = player_games.select(
        *key,
        "game_date",
        "game_id",
        "team_abbr",
        "is_dnp",
        "minutes_played",
        pl.col("points").cast(pl.Float64),
        "usage_rate",
        qualifying_flag().alias("q"),
    ).join(lines, on=[*key, "game_date"], how="left")
    numbered = _numbered(rows, "player_lookup")
    q = pl.col("q")
    previous = numbered.filter(q).select(
        ROW,
        pl.col("team_abbr").shift(1).over(key).alias("prev_team"),
        pl.col("game_date").shift(1).over(key).alias("prev_date"),
    )
    return (
        numbered.with_columns(
            q.cum_sum().over(key).alias("qc"),
            (q & pl.col("line").is_not_null()).cum_sum().over(key).alias("lc"),
            (q & pl.col("usage_rate").is_not_null()).cum_sum().over(key).alias("uc"),
        )
        .join(previous, on=ROW, how="left", maintain_order="left")
        .drop("game_id")
    )


def qualifying_flag() -> pl.Expr:
    """SPEC 0: active, not DNP and minutes played (features.common.qualifying_games)."""
    return (
        pl.col("is_active").fill_null(False)
        & ~pl.col("is_dnp").fill_null(False)
        & (pl.col("minutes_played") > 0)
    )


def _recent_qualifying(window: pl.LazyFrame) -> pl.LazyFrame:
    """Q60 of each pair with its ages: among Q60 (`age`), among G (`age_g`), among the
    games with a usage rate (`age_u`); each from the running counts (the newest's count less
    the game's), so no sort. Also per pair: n, the mean of all Q60 points, and the ages of
    the newest Q30 game below and above the slate's line (the streaks of 51 and 52)."""
    recent = pl.col("game_date") >= pl.col("analysis_date") - pl.duration(days=RECENT_DAYS)
    q60 = window.filter(pl.col("q")).with_columns(recent.alias("in_q30"))
    below = pl.col("in_q30") & (pl.col("points") < pl.col("slate_line"))
    above = pl.col("in_q30") & (pl.col("points") > pl.col("slate_line"))
    newest = q60.group_by("pair_id").agg(
        pl.len().alias("n"),
        pl.col("qc").max().alias("qc_last"),
        pl.col("lc").max().alias("lc_last"),
        pl.col("uc").max().alias("uc_last"),
        pl.col("points").mean().alias("mean_all"),
        pl.when(below).then(pl.col("qc")).max().alias("qc_under"),
        pl.when(above).then(pl.col("qc")).max().alias("qc_over"),
    )
    gap = (pl.col("game_date") - pl.col("prev_date")).dt.total_days()
    qc_last = pl.col("qc_last")
    return (
        q60.drop("age")
        .join(newest, on="pair_id", how="left", maintain_order="left")
        .with_columns(
            (qc_last - pl.col("qc")).alias("age"),
            pl.when(pl.col("line").is_not_null())
            .then(pl.col("lc_last") - pl.col("lc"))
            .alias("age_g"),
            pl.when(pl.col("usage_rate").is_not_null())
            .then(pl.col("uc_last") - pl.col("uc"))
            .alias("age_u"),
            (qc_last - pl.col("qc_under")).fill_null(NOT_FOUND).alias("first_under"),
            (qc_last - pl.col("qc_over")).fill_null(NOT_FOUND).alias("first_over"),
        )
        .with_columns(
            # The predecessor counts only when it is in Q60 too (not the oldest Q60 game).
            (
                (pl.col("age") < pl.col("n") - 1)
                & (
                    pl.col("team_abbr").ne_missing(pl.col("prev_team"))
                    | (gap > STRUCTURAL_GAP_DAYS)
                )
            ).alias("structural_change"),
        )
    )


def _where(condition: pl.Expr, value: pl.Expr) -> pl.Expr:
    """`value` where `condition` holds, else NULL: an aggregate then skips the other games
    (a masked column aggregates far faster than a filter inside a group)."""
    return pl.when(condition).then(value)


def _slope_sums(games: int) -> list[pl.Expr]:
    """m = min(games, n) and Σy, Σxy over the newest m games, oldest at x = 1."""
    m = pl.min_horizontal(pl.col("n"), pl.lit(games))
    newest = pl.col("age") < m
    x = (m - pl.col("age")).cast(pl.Float64)
    points = pl.col("points")
    return [
        m.first().alias(f"v3__slope{games}_m"),
        _where(newest, points).sum().alias(f"v3__slope{games}_sy"),
        _where(newest, x * points).sum().alias(f"v3__slope{games}_sxy"),
    ]


def _q60_aggregates(q60: pl.LazyFrame) -> pl.LazyFrame:
    """Per pair: the figures of features 31, 32, 34, 43 to 46, 48, 49, 51, 52, 55, 56, 58."""
    points, minutes, line = pl.col("points"), pl.col("minutes_played"), pl.col("line")
    age, age_g, q30 = pl.col("age"), pl.col("age_g"), pl.col("in_q30")
    slate_line = pl.col("slate_line")
    return q60.group_by("pair_id").agg(
        pl.col("n").first().alias("v3__n"),
        q30.sum().alias("v3__q30_games"),
        _where(q30, minutes).mean().alias("v3__minutes_q30"),
        _where(q30, points / minutes).mean().alias("v3__ppm_q30"),
        *_slope_sums(SLOPE_GAMES),
        *_slope_sums(TREND_GAMES),
        _where(age < RECENT_GAMES, points).mean().alias("v3__points_last_3"),
        pl.col("mean_all").first().alias("v3__points_mean"),
        points.std(ddof=1).alias("v3__points_sd"),
        _where(points >= pl.col("mean_all"), age).min().alias("v3__below_run"),
        _where(pl.col("age_u") < USAGE_GAMES, pl.col("usage_rate")).mean().alias("v3__usage_5"),
        pl.col("usage_rate").count().alias("v3__usage_games"),
        _where(pl.col("structural_change"), age).min().alias("v3__change_age"),
        (q30 & (points > slate_line) & (age < pl.col("first_under"))).sum().alias("v3__over"),
        (q30 & (points < slate_line) & (age < pl.col("first_over"))).sum().alias("v3__under"),
        line.count().alias("v3__line_games"),
        _where(age_g < OVER_GAMES, (points > line).cast(pl.Float64)).mean().alias("v3__over_rate"),
        _where(age_g < MARGIN_GAMES, points - line).mean().alias("v3__margin"),
        _where(age < VOLATILITY_GAMES, minutes).std(ddof=1).alias("v3__minutes_sd"),
    )


def _r10_aggregates(window: pl.LazyFrame) -> pl.LazyFrame:
    """Per pair: R10, the newest 10 box rows of any status, and how many are DNPs."""
    r10 = window.filter(pl.col("age") < DNP_ROWS)
    return r10.group_by("pair_id").agg(
        pl.len().alias("v3__r10_rows"),
        pl.col("is_dnp").fill_null(False).cast(pl.Float64).mean().alias("v3__dnp_share"),
    )


def _player_windows(
    player_games: pl.LazyFrame, lines: pl.LazyFrame, pairs: pl.LazyFrame
) -> pl.LazyFrame:
    """Per pair: the Q60 and R10 aggregates (pairs without a game get NULLs).

    Only the games of [first D - 60, last D) are sequenced: the others are in no window, and
    a window reads differences of the running counts and a predecessor inside Q60, which
    that range holds (a nightly date sequences two months of games, not the season's)."""
    span = pairs.select(
        (pl.col("analysis_date").min() - pl.duration(days=WINDOW_DAYS)).alias("span_from"),
        pl.col("analysis_date").max().alias("span_until"),
    )
    in_span = pl.col("game_date").is_between("span_from", "span_until", closed="left")
    games = player_games.join(span, how="cross").filter(in_span).drop("span_from", "span_until")
    sequence = _player_sequence(games, lines).cache()  # read by both as-of joins and the window
    # Read twice (Q60 and R10): computed once.
    window = _window(pairs, sequence, "player_lookup", WINDOW_DAYS, carry=["slate_line"]).cache()
    q60 = _q60_aggregates(_recent_qualifying(window))
    return (
        pairs.join(q60, on="pair_id", how="left")
        .join(_r10_aggregates(window), on="pair_id", how="left")
        .drop("pair_id", "season_year", "slate_line")
    )


def _versus_opponent(player_games: pl.LazyFrame, players: pl.LazyFrame) -> pl.LazyFrame:
    """Per pair: the player's qualifying games of S before D against the context opponent
    (features 29 and 30): how many, and their points (integers: exact in any order). A pair
    meets a handful of games, so a join and a filter, not a running count per opponent."""
    key = ["player_lookup", "opponent_team_abbr", "season_year"]
    games = qualifying_games(player_games).select(*key, "game_date", "points")
    return (
        players.select(*PAIR, "opponent_team_abbr", "season_year")
        .unique(subset=PAIR)
        .join(games, on=key, how="inner")
        .filter(pl.col("game_date") < pl.col("analysis_date"))
        .group_by(PAIR)
        .agg(
            pl.len().alias("v3__games_vs_opponent"),
            pl.col("points").sum().alias("v3__points_vs_opponent"),
        )
    )


def _previous_line(lines: pl.LazyFrame, pairs: pl.LazyFrame) -> pl.LazyFrame:
    """Per pair: the newest known line of the player's context rows of S in [D - 14, D)."""
    return latest_before(
        pairs.select(*PAIR, "season_year"), lines, ["player_lookup", "season_year"]
    ).select(
        *PAIR,
        pl.when(
            pl.col("game_date") >= pl.col("analysis_date") - pl.duration(days=LINE_HISTORY_DAYS)
        )
        .then(pl.col("line"))
        .alias("v3__previous_line"),
    )


def _team_blowouts(team_offense: pl.DataFrame, players: pl.LazyFrame) -> pl.LazyFrame:
    """Per (team, D): the team's newest 10 games of S in [D - 60, D), then those with the
    opponent's row for the game_id: how many, and the share decided by 15 or more (57)."""
    games = team_offense.lazy()
    opponent = games.select(
        "game_id",
        pl.col("team_abbr").alias("opponent_team_abbr"),
        pl.col("points_scored").alias("opponent_points"),
        pl.lit(True).alias("opponent_found"),
    )
    rows = games.select(
        "team_abbr", "opponent_team_abbr", "game_id", "game_date", "season_year", "points_scored"
    ).join(opponent, on=["game_id", "opponent_team_abbr"], how="left")
    pairs = (
        players.select("team_abbr", "analysis_date", "season_year")
        .unique()
        .sort("team_abbr", "analysis_date")
        .with_row_index("pair_id")
    )
    window = _window(pairs, _numbered(rows, "team_abbr"), "team_abbr", WINDOW_DAYS, newest=10)
    margin = (pl.col("points_scored") - pl.col("opponent_points")).abs()
    counted = (
        window.filter(pl.col("opponent_found").fill_null(False))
        .group_by("pair_id")
        .agg(
            pl.len().alias("v3__team_games"),
            (margin >= BLOWOUT_MARGIN)
            .fill_null(False)
            .cast(pl.Float64)
            .mean()
            .alias("v3__blowouts"),
        )
    )
    return pairs.join(counted, on="pair_id", how="inner").drop("pair_id", "season_year")


def _team_lines(team_context: pl.DataFrame) -> pl.LazyFrame:
    """The team row of (team, D): its game_total and its own game_spread (optional columns)."""
    return team_context.lazy().select(
        "team_abbr",
        pl.col("game_date").alias("analysis_date"),
        pl.col("game_total").cast(pl.Float64).alias("v3__game_total"),
        pl.col("game_spread").cast(pl.Float64).alias("v3__game_spread"),
    )


def attach_v3_inputs(
    rows: pl.LazyFrame, players: pl.LazyFrame, phase3: Phase3Frames, player_games: pl.LazyFrame
) -> pl.LazyFrame:
    """The slate rows with every input of features 25 to 59 as `v3__*` columns. `players`:
    the slate itself (one row per player and D, with `current_points_line`), from which the
    windows start (not `rows`, whose joins the plan would otherwise compute once per use);
    `player_games`: the slate players' box rows."""
    context = with_optional_columns(phase3.player_context, UPCOMING_PLAYER_GAME_CONTEXT)
    team_context = with_optional_columns(phase3.team_context, UPCOMING_TEAM_GAME_CONTEXT)
    lines = _context_lines(context)
    pairs = _player_pairs(players)
    return (
        rows.join(_player_windows(player_games, lines, pairs), on=PAIR, how="left")
        .join(_versus_opponent(player_games, players), on=PAIR, how="left")
        .join(_previous_line(lines, pairs), on=PAIR, how="left")
        .join(
            _team_blowouts(phase3.team_offense, players),
            on=["team_abbr", "analysis_date"],
            how="left",
        )
        .join(_team_lines(team_context), on=["team_abbr", "analysis_date"], how="left")
    )


# ---------------------------------------------------------------------------------------------
# Metrics: features 25 to 59, one function each. `f(k)` is feature k as stored (NULL when
# tagged 'default'), given by P5's assembly.
# ---------------------------------------------------------------------------------------------

Stored = Callable[[int], pl.Expr]


def _v3(column: str) -> pl.Expr:
    return pl.col(f"v3__{column}")


def _float(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64)


def vegas_points_line() -> pl.Expr:
    return _float(pl.col("current_points_line"))


def source_not_in_phase3() -> pl.Expr:
    """Features 26, 27, 47 and 50: their source is not in Phase 3, always NULL."""
    return pl.lit(None, dtype=pl.Float64)


def has_vegas_line() -> pl.Expr:
    return _float(vegas_points_line().is_not_null())


def games_vs_opponent() -> pl.Expr:
    return _float(_v3("games_vs_opponent").fill_null(0))


def avg_points_vs_opponent(f: Stored) -> pl.Expr:
    """Mean points against the context opponent this season; none: f2 as stored."""
    games = _v3("games_vs_opponent").fill_null(0)
    mean = _float(_v3("points_vs_opponent")) / _float(games)
    return pl.when(games > 0).then(mean).otherwise(f(2))


def minutes_avg_last_10() -> pl.Expr:
    """Mean minutes over Q30 (the name is the old system's; its window is 30 days)."""
    return pl.when(_v3("q30_games") >= 1).then(_v3("minutes_q30"))


def ppm_avg_last_10() -> pl.Expr:
    return pl.when(_v3("q30_games") >= 1).then(_v3("ppm_q30"))


def dnp_rate() -> pl.Expr:
    return pl.when(_v3("r10_rows") >= 3).then(_v3("dnp_share"))


def slope(games: int) -> pl.Expr:
    """Least-squares slope of points on x = 1..m (oldest first) over the newest m games.
    Σx and Σx² are integers, computed as such (a float division by 6 could miss by an ulp)."""
    m_int = _v3(f"slope{games}_m").cast(pl.Int64)
    m = _float(m_int)
    sum_x = _float(m_int * (m_int + 1) // 2)
    sum_xx = _float(m_int * (m_int + 1) * (2 * m_int + 1) // 6)
    numerator = m * _v3(f"slope{games}_sxy") - sum_x * _v3(f"slope{games}_sy")
    return numerator / (m * sum_xx - sum_x * sum_x)


def pts_slope_10g() -> pl.Expr:
    return pl.when(_v3("n") >= 5).then(slope(SLOPE_GAMES))


def pts_vs_season_zscore(f: Stored) -> pl.Expr:
    return pl.when(f(3) != 0).then(((f(0) - f(2)) / f(3)).clip(-3.0, 3.0))


def breakout_flag(f: Stored) -> pl.Expr:
    return _float(f(0) > f(2) + 1.5 * f(3))


def star_teammates_out() -> pl.Expr:
    return _float(pl.col("star_teammates_out"))


def game_total_line() -> pl.Expr:
    return _v3("game_total")


def days_rest() -> pl.Expr:
    return _float(pl.col("days_rest"))


def minutes_load_last_7d() -> pl.Expr:
    return _float(pl.col("minutes_in_last_7_days"))


def spread_magnitude() -> pl.Expr:
    return _v3("game_spread").abs()


def implied_team_total() -> pl.Expr:
    return (_v3("game_total") - _v3("game_spread")) / 2


def points_avg_last_3() -> pl.Expr:
    return pl.when(_v3("n") >= 1).then(_v3("points_last_3"))


def scoring_trend_slope() -> pl.Expr:
    return pl.when(_v3("n") >= 4).then(slope(TREND_GAMES))


def deviation_from_avg_last3() -> pl.Expr:
    """(f43 - mean) / sd over all of Q60 (sd ddof 1); 0.0 when sd is 0."""
    sd = _v3("points_sd")
    deviation = (points_avg_last_3() - _v3("points_mean")) / sd
    return pl.when(_v3("n") >= 2).then(pl.when(sd == 0).then(0.0).otherwise(deviation))


def consecutive_games_below_avg() -> pl.Expr:
    """Newest Q60 games before the first whose points reach the mean of all of Q60."""
    return pl.when(_v3("n") >= 1).then(_float(pl.coalesce(_v3("below_run"), _v3("n"))))


def usage_rate_last_5() -> pl.Expr:
    return pl.when(_v3("usage_games") >= 3).then(_v3("usage_5"))


def games_since_structural_change() -> pl.Expr:
    """Q60 games after the newest one that changed team or came 14+ days after the one
    before it; none: min(n, 30)."""
    none = pl.min_horizontal(_v3("n"), pl.lit(STRUCTURAL_CAP))
    return pl.when(_v3("n") >= 1).then(_float(pl.coalesce(_v3("change_age"), none)))


def prop_over_streak() -> pl.Expr:
    """Q30 newest first against f25: games above it before the first below (equal: passed)."""
    return pl.when(vegas_points_line().is_not_null()).then(_float(_v3("over").fill_null(0)))


def prop_under_streak() -> pl.Expr:
    return pl.when(vegas_points_line().is_not_null()).then(_float(_v3("under").fill_null(0)))


def line_vs_season_avg(f: Stored) -> pl.Expr:
    return vegas_points_line() - f(2)


def prop_line_delta() -> pl.Expr:
    return vegas_points_line() - _v3("previous_line")


def over_rate_last_10() -> pl.Expr:
    return pl.when(_v3("line_games") >= 5).then(_v3("over_rate"))


def margin_vs_line_avg_last_5() -> pl.Expr:
    return pl.when(_v3("line_games") >= 3).then(_v3("margin"))


def blowout_minutes_risk() -> pl.Expr:
    return pl.when(_v3("team_games") >= 1).then(_v3("blowouts"))


def minutes_volatility_last_10() -> pl.Expr:
    return pl.when(_v3("n") >= 3).then(_v3("minutes_sd"))


def opponent_pace_mismatch(f: Stored) -> pl.Expr:
    return f(22) - f(14)


def v3_values(f: Stored) -> dict[int, pl.Expr]:
    """SPEC 16.2 row by row: the value of each of features 25 to 59."""
    return {
        25: vegas_points_line(),
        26: source_not_in_phase3(),
        27: source_not_in_phase3(),
        28: has_vegas_line(),
        29: avg_points_vs_opponent(f),
        30: games_vs_opponent(),
        31: minutes_avg_last_10(),
        32: ppm_avg_last_10(),
        33: dnp_rate(),
        34: pts_slope_10g(),
        35: pts_vs_season_zscore(f),
        36: breakout_flag(f),
        37: star_teammates_out(),
        38: game_total_line(),
        39: days_rest(),
        40: minutes_load_last_7d(),
        41: spread_magnitude(),
        42: implied_team_total(),
        43: points_avg_last_3(),
        44: scoring_trend_slope(),
        45: deviation_from_avg_last3(),
        46: consecutive_games_below_avg(),
        47: source_not_in_phase3(),
        48: usage_rate_last_5(),
        49: games_since_structural_change(),
        50: source_not_in_phase3(),
        51: prop_over_streak(),
        52: prop_under_streak(),
        53: line_vs_season_avg(f),
        54: prop_line_delta(),
        55: over_rate_last_10(),
        56: margin_vs_line_avg_last_5(),
        57: blowout_minutes_risk(),
        58: minutes_volatility_last_10(),
        59: opponent_pace_mismatch(f),
    }
