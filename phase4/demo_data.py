"""A deterministic synthetic NBA season shaped exactly like the five Phase 3 input tables.

Why: the flow, the CLI demo (`phase4 demo-data`) and the benchmarks need a full, realistic season
without the licence-restricted real fixtures. The generator simulates a schedule, rosters, box
scores (with zones, DNPs, injuries and trades), then derives every team table and both
"upcoming" context tables from those box scores the way Phase 3 does, point in time: a context
row for date D only uses games strictly before D.

Conventions copied from the real files (checked against `realdata/season_2023_24`):
`days_rest` counts full days off between games (0 on a back-to-back), "last 7 days" means
`D - 7 <= game_date < D`, `back_to_back` is the player's own previous qualifying game on D - 1,
`back_to_backs_last_14_days` counts such second games inside the 14-day window, pace is the mean
of both teams' possession estimates per 48 minutes. Not in the real files but filled here:
`player_age`, non-'available' `player_status`, `current_points_line`, blocks, spread and total.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import polars as pl

TS = pl.Datetime("us", "UTC")

# ---------------------------------------------------------------------------------------------
# Output schemas: the exact column order and dtypes of the real Phase 3 Parquet files.
# ---------------------------------------------------------------------------------------------

_ZONE_COLS = ("paint_attempts", "paint_makes", "mid_range_attempts", "mid_range_makes")

PLAYER_GAME_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "player_lookup": pl.String(),
    "universal_player_id": pl.String(),
    "player_full_name": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "is_active": pl.Boolean(),
    "is_dnp": pl.Boolean(),
    "minutes_played": pl.Float64(),
    "points": pl.Int64(),
    "fg_attempts": pl.Int64(),
    "fg_makes": pl.Int64(),
    "three_pt_attempts": pl.Int64(),
    "three_pt_makes": pl.Int64(),
    "ft_attempts": pl.Int64(),
    "ft_makes": pl.Int64(),
    "rebounds": pl.Int64(),
    "assists": pl.Int64(),
    "turnovers": pl.Int64(),
    **{c: pl.Int64() for c in _ZONE_COLS},
    "assisted_fg_makes": pl.Int64(),
    "unassisted_fg_makes": pl.Int64(),
    "usage_rate": pl.Float64(),
    "ts_pct": pl.Float64(),
    "win_flag": pl.Boolean(),
    "processed_at": TS,
}

TEAM_DEFENSE_GAME_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "defending_team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "points_allowed": pl.Int64(),
    "opp_fg_attempts": pl.Int64(),
    "opp_fg_makes": pl.Int64(),
    "opp_paint_attempts": pl.Int64(),
    "opp_paint_makes": pl.Int64(),
    "opp_mid_range_attempts": pl.Int64(),
    "opp_mid_range_makes": pl.Int64(),
    "opp_three_pt_attempts": pl.Int64(),
    "opp_three_pt_makes": pl.Int64(),
    "points_in_paint_allowed": pl.Int64(),
    "mid_range_points_allowed": pl.Int64(),
    "three_pt_points_allowed": pl.Int64(),
    "blocks_paint": pl.Int64(),
    "blocks_mid_range": pl.Int64(),
    "blocks_three_pt": pl.Int64(),
    "defensive_rating": pl.Float64(),
    "opponent_pace": pl.Float64(),
    "home_game": pl.Boolean(),
    "win_flag": pl.Boolean(),
    "processed_at": TS,
}

TEAM_OFFENSE_GAME_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "points_scored": pl.Int64(),
    "fg_attempts": pl.Int64(),
    "fg_makes": pl.Int64(),
    "three_pt_attempts": pl.Int64(),
    "three_pt_makes": pl.Int64(),
    "ft_attempts": pl.Int64(),
    "ft_makes": pl.Int64(),
    "turnovers": pl.Int64(),
    "possessions": pl.Float64(),
    "pace": pl.Float64(),
    "offensive_rating": pl.Float64(),
    "home_game": pl.Boolean(),
    "win_flag": pl.Boolean(),
    "processed_at": TS,
}

UPCOMING_PLAYER_GAME_CONTEXT_SCHEMA: dict[str, pl.DataType] = {
    "player_lookup": pl.String(),
    "universal_player_id": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "home_game": pl.Boolean(),
    "back_to_back": pl.Boolean(),
    "season_phase": pl.String(),
    "days_rest": pl.Int64(),
    "opponent_days_rest": pl.Int64(),
    "games_in_last_7_days": pl.Int64(),
    "minutes_in_last_7_days": pl.Float64(),
    "games_in_last_14_days": pl.Int64(),
    "minutes_in_last_14_days": pl.Float64(),
    "avg_minutes_per_game_last_7": pl.Float64(),
    "back_to_backs_last_14_days": pl.Int64(),
    "fourth_quarter_minutes_last_7": pl.Float64(),
    "avg_usage_rate_last_7_games": pl.Float64(),
    "projected_usage_rate": pl.Float64(),
    "star_teammates_out": pl.Int64(),
    "pace_differential": pl.Float64(),
    "opponent_pace_last_10": pl.Float64(),
    "player_age": pl.Int64(),
    "player_status": pl.String(),
    "current_points_line": pl.Float64(),
    "processed_at": TS,
}

UPCOMING_TEAM_GAME_CONTEXT_SCHEMA: dict[str, pl.DataType] = {
    "team_abbr": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "opponent_team_abbr": pl.String(),
    "home_game": pl.Boolean(),
    "team_days_rest": pl.Int64(),
    "team_back_to_back": pl.Boolean(),
    "games_in_last_7_days": pl.Int64(),
    "game_spread": pl.Float64(),
    "game_total": pl.Float64(),
    "starters_out_count": pl.Int64(),
    "processed_at": TS,
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "player_game_summary": PLAYER_GAME_SUMMARY_SCHEMA,
    "team_defense_game_summary": TEAM_DEFENSE_GAME_SUMMARY_SCHEMA,
    "team_offense_game_summary": TEAM_OFFENSE_GAME_SUMMARY_SCHEMA,
    "upcoming_player_game_context": UPCOMING_PLAYER_GAME_CONTEXT_SCHEMA,
    "upcoming_team_game_context": UPCOMING_TEAM_GAME_CONTEXT_SCHEMA,
}

# ---------------------------------------------------------------------------------------------
# League constants
# ---------------------------------------------------------------------------------------------

# conference -> three divisions of five teams; the structure drives an NBA-like 82-game slate.
CONFERENCES: dict[str, tuple[tuple[str, ...], ...]] = {
    "East": (
        ("BOS", "BKN", "NYK", "PHI", "TOR"),
        ("CHI", "CLE", "DET", "IND", "MIL"),
        ("ATL", "CHA", "MIA", "ORL", "WAS"),
    ),
    "West": (
        ("DEN", "MIN", "OKC", "POR", "UTA"),
        ("GSW", "LAC", "LAL", "PHX", "SAC"),
        ("DAL", "HOU", "MEM", "NOP", "SAS"),
    ),
}
TEAMS: tuple[str, ...] = tuple(t for divs in CONFERENCES.values() for d in divs for t in d)
GAMES_PER_TEAM = 82
ROSTER_SIZE = 15  # standard contracts; two more two-way players per team are called up
TWO_WAY = 2
STAR_SLOTS = 3  # "top-3 scorers" for star_teammates_out
STARTER_SLOTS = 5

ZONES = ("paint", "mid", "three")
ZONE_PCT = {"paint": 0.58, "mid": 0.41, "three": 0.36}
ASSIST_RATE = {"paint": 0.55, "mid": 0.38, "three": 0.84}
BLOCK_RATE = {"paint": 0.12, "mid": 0.04, "three": 0.012}


@dataclass(frozen=True)
class Archetype:
    """Playing style: zone mix (paint, mid, three), FT%, and FTA / TOV / REB / AST tendencies."""

    mix: tuple[float, float, float]
    ft_pct: float
    fta: float
    tov: float
    reb: float
    ast: float


ARCHETYPES: dict[str, Archetype] = {
    "guard": Archetype((0.33, 0.20, 0.47), 0.83, 0.9, 1.2, 0.6, 1.9),
    "wing": Archetype((0.38, 0.17, 0.45), 0.79, 1.0, 1.0, 0.9, 0.9),
    "big": Archetype((0.66, 0.15, 0.19), 0.71, 1.3, 0.9, 1.8, 0.6),
}
TEAM_ARCHETYPES = ("guard",) * 6 + ("wing",) * 6 + ("big",) * 5
# How many players get minutes in a team-game (mean about 10; real box scores: 10.7).
ROTATION = (8, 9, 10, 11, 12)
ROTATION_WEIGHTS = (0.1, 0.25, 0.3, 0.23, 0.12)
# Per playing-order position: the first player on the floor gets the most minutes.
MINUTES_BY_ORDER = (34.5, 33, 31, 29, 27, 24, 22, 19, 16, 13, 10, 8, 6, 5, 4)
USAGE_BY_SLOT = (31.0, 26.5, 24.0, 21.5, 20.0, 19.0, 18.0, 17.5, 17.0, 16.5, 16.0, 15.5, 15.0)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "aaron adrian alex andre ben blake brandon caleb cameron carter chris cole damon darius "
    "david derek devin dylan elijah eric evan felix gavin grant isaac jalen jamal jared jason "
    "jordan julian justin kevin kyle lamar liam logan lucas malik marcus mason miles nathan "
    "noah omar owen quentin reggie ryan sam terrence trevor tyler victor wesley xavier zach"
)
SURNAME_HEADS = _words("al bar cal dor fen gal har kel lor mar nor pel ras sor tal vel wen bro")
SURNAME_TAILS = _words("by den ford ley mont ner ridge son ton well wick more ston field")


# ---------------------------------------------------------------------------------------------
# Calendar and schedule
# ---------------------------------------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Mon=0) of a month: NBA dates are anchored on weekdays."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def all_star_sunday(season_year: int) -> date:
    """The All-Star game: third Sunday of February of S + 1 (2025-02-16, 2024-02-18)."""
    return _nth_weekday(season_year + 1, 2, 6, 3)


def season_bounds(season_year: int) -> tuple[date, date]:
    """Opening night (Tuesday on or after Oct 21) and the last regular-season Sunday in April."""
    opening = date(season_year, 10, 21)
    opening += timedelta(days=(1 - opening.weekday()) % 7)
    return opening, _nth_weekday(season_year + 1, 4, 6, 2)


def _dark_days(season_year: int) -> set[date]:
    """Days without games: the All-Star week (Thu..Wed), Thanksgiving and Christmas Eve."""
    asg = all_star_sunday(season_year)
    days = {asg + timedelta(days=k) for k in range(-3, 4)}
    days.add(_nth_weekday(season_year, 11, 3, 4))
    days.add(date(season_year, 12, 24))
    return days


def demo_slate_date(season_year: int = 2024) -> date:
    """A mid-season slate date (Jan 15 of S + 1); the scheduler plays games on every open day."""
    return date(season_year + 1, 1, 15)


def _matchups() -> list[tuple[str, str]]:
    """1,230 (home, away) games: 4 vs division, 4 or 3 vs conference, 2 vs the other conference.

    The 3-game conference pairs form a rotation between divisions so every team has exactly four
    of them, two at home, which keeps every team at 41 home and 41 away games.
    """
    games: list[tuple[str, str]] = []
    for divisions in CONFERENCES.values():
        for d, division in enumerate(divisions):
            for i, team in enumerate(division):
                for other in division[i + 1 :]:
                    games += [(team, other), (other, team)] * 2
                nxt = divisions[(d + 1) % 3]
                three_game = {nxt[i], nxt[(i + 1) % 5]}
                for other in nxt:
                    if other in three_game:
                        games += [(team, other), (team, other), (other, team)]
                    else:
                        games += [(team, other), (other, team)] * 2
    east, west = (tuple(t for d in divs for t in d) for divs in CONFERENCES.values())
    for team in east:
        for other in west:
            games += [(team, other), (other, team)]
    return games


@dataclass(frozen=True)
class Game:
    game_id: str
    game_date: date
    home: str
    away: str


B2B_ACCEPT = 0.33  # chance a team that played yesterday may play again today


def _schedule(rng: random.Random, season_year: int) -> list[Game]:
    """Assign the matchups to dates greedily, keeping every team on an even 82-game pace.

    Teams behind pace are served first; a team that played yesterday is only eligible with
    probability B2B_ACCEPT (about 15 % of team games end up back-to-backs) and never plays three
    days running. Every open day gets at least two games.
    """
    opening, last_day = season_bounds(season_year)
    dark = _dark_days(season_year)
    target_end = last_day - timedelta(days=1)
    open_days = [
        opening + timedelta(days=k)
        for k in range((target_end - opening).days + 1)
        if opening + timedelta(days=k) not in dark
    ]
    pending = _matchups()
    rng.shuffle(pending)
    played = {t: 0 for t in TEAMS}
    last: dict[str, list[date]] = {t: [] for t in TEAMS}
    chosen: list[tuple[date, str, str]] = []
    day, index = opening, 0
    while pending:
        if day in dark:
            day += timedelta(days=1)
            continue
        left = max(1, len(open_days) - index)
        late = day > target_end
        want = 15 if late else max(2, min(15, round(len(pending) / left * rng.uniform(0.7, 1.5))))
        done = 1.0 if late else index / len(open_days)
        urgency = {t: GAMES_PER_TEAM * done - played[t] for t in TEAMS}
        ok = {t: _may_play(last[t], day, 1.0 if late else B2B_ACCEPT, rng) for t in TEAMS}
        scored = sorted(
            range(len(pending)),
            key=lambda g: -(urgency[pending[g][0]] + urgency[pending[g][1]] + 2 * rng.random()),
        )
        busy: set[str] = set()
        taken: list[int] = []
        for g in scored:
            home, away = pending[g]
            if home in busy or away in busy or not (ok[home] and ok[away]):
                continue
            busy.update((home, away))
            taken.append(g)
            if len(taken) == want:
                break
        for g in taken:
            home, away = pending[g]
            chosen.append((day, home, away))
            for team in (home, away):
                played[team] += 1
                last[team].append(day)
        drop = set(taken)
        pending = [g for i, g in enumerate(pending) if i not in drop]
        day += timedelta(days=1)
        index += 1
    chosen.sort()
    prefix = f"002{season_year % 100:02d}"
    return [Game(f"{prefix}{n:05d}", d, h, a) for n, (d, h, a) in enumerate(chosen, start=1)]


def _may_play(history: list[date], day: date, accept: float, rng: random.Random) -> bool:
    """Rested teams always may; back-to-backs sometimes; three days running never."""
    yesterday = day - timedelta(days=1)
    if not history or history[-1] != yesterday:
        return True
    if len(history) >= 2 and history[-2] == day - timedelta(days=2):
        return False
    return rng.random() < accept


# ---------------------------------------------------------------------------------------------
# Players, rosters, trades and injuries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Player:
    lookup: str
    full_name: str
    uid: str
    age: int
    archetype: str
    usage: float
    mix: tuple[float, float, float]
    shooting: float
    ft_pct: float
    fta_rate: float
    tov_rate: float
    reb_rate: float
    ast_rate: float


def _names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """Unique synthetic (full name, lookup) pairs; lookups are lowercase letters only."""
    surnames = [h + t for h in SURNAME_HEADS for t in SURNAME_TAILS]
    by_lookup = {f + s: f"{f.title()} {s.title()}" for f in FIRST_NAMES for s in surnames}
    picked = rng.sample(sorted(by_lookup), count)
    return [(by_lookup[lookup], lookup) for lookup in picked]


def _make_player(
    rng: random.Random, name: tuple[str, str], uid: int, slot: int, kind: str
) -> Player:
    """One player; the roster slot sets the role (usage, star shooting), the archetype the style."""
    arch = ARCHETYPES[kind]
    mix = [m * rng.uniform(0.8, 1.2) for m in arch.mix]
    star = slot < STAR_SLOTS
    star_boost = 1.35 if star else 1.0
    return Player(
        lookup=name[1],
        full_name=name[0],
        uid=f"{name[1]}_{uid}",
        age=round(rng.triangular(20, 34, 26)),
        archetype=kind,
        usage=USAGE_BY_SLOT[min(slot, len(USAGE_BY_SLOT) - 1)] + rng.gauss(0, 2.0 if star else 1.2),
        mix=(mix[0] / sum(mix), mix[1] / sum(mix), mix[2] / sum(mix)),
        shooting=min(1.12, max(0.88, rng.gauss(1.01 if star else 0.99, 0.04))),
        ft_pct=min(0.93, max(0.5, rng.gauss(arch.ft_pct, 0.05))),
        fta_rate=arch.fta * star_boost * rng.uniform(0.8, 1.2),
        tov_rate=arch.tov * rng.uniform(0.8, 1.2),
        reb_rate=arch.reb * rng.uniform(0.8, 1.2),
        ast_rate=arch.ast * star_boost * rng.uniform(0.8, 1.2),
    )


def _make_rosters(rng: random.Random) -> tuple[list[Player], dict[str, list[int]]]:
    """17 players per team (15 standard + 2 two-way), indexed by slot: slot 0 is the best."""
    per_team = ROSTER_SIZE + TWO_WAY
    names = _names(rng, len(TEAMS) * per_team)
    ids = rng.sample(range(1626000, 1642000), len(names))
    players: list[Player] = []
    rosters: dict[str, list[int]] = {}
    for t, team in enumerate(TEAMS):
        kinds = list(TEAM_ARCHETYPES)
        rng.shuffle(kinds)
        rosters[team] = []
        for slot in range(per_team):
            k = t * per_team + slot
            rosters[team].append(len(players))
            players.append(_make_player(rng, names[k], ids[k], slot, kinds[slot]))
    _add_veterans(rng, players, rosters)
    return players, rosters


def _add_veterans(rng: random.Random, players: list[Player], rosters: dict[str, list[int]]) -> None:
    """A handful of 35+ veterans and teenage rookies, so age-based fatigue rules get exercised."""
    standard = [i for r in rosters.values() for i in r[1:ROSTER_SIZE]]
    picks = rng.sample(standard, 10)
    for n, i in enumerate(picks):
        age = rng.randint(35, 39) if n < 6 else 19
        players[i] = replace(players[i], age=age)


@dataclass(frozen=True)
class Trade:
    day: date
    team_a: str
    slot_a: int
    team_b: str
    slot_b: int


def _trades(rng: random.Random, season_year: int) -> list[Trade]:
    """3-5 one-for-one swaps of rotation players between distinct teams, Dec 15 .. Feb 6."""
    first = date(season_year, 12, 15)
    span = (date(season_year + 1, 2, 6) - first).days
    teams = rng.sample(TEAMS, 10)
    trades = []
    for n in range(rng.randint(3, 5)):
        slot = rng.randint(3, 9)
        other = min(9, max(3, slot + rng.choice((-1, 0, 1))))
        day = first + timedelta(days=rng.randint(0, span))
        trades.append(Trade(day, teams[2 * n], slot, teams[2 * n + 1], other))
    return sorted(trades, key=lambda t: t.day)


def _roster_versions(
    rosters: dict[str, list[int]], trades: list[Trade]
) -> dict[str, list[tuple[date, list[int]]]]:
    """Each team's roster by effective date: a traded player takes the other's slot."""
    current = {t: list(r) for t, r in rosters.items()}
    versions = {t: [(date.min, list(r))] for t, r in current.items()}
    for trade in trades:
        a = current[trade.team_a][trade.slot_a]
        b = current[trade.team_b][trade.slot_b]
        current[trade.team_a][trade.slot_a] = b
        current[trade.team_b][trade.slot_b] = a
        for team in (trade.team_a, trade.team_b):
            versions[team].append((trade.day, list(current[team])))
    return versions


def _roster_on(versions: list[tuple[date, list[int]]], day: date) -> list[int]:
    return [r for since, r in versions if since <= day][-1]


def _injuries(
    rng: random.Random, count: int, season_year: int
) -> dict[int, list[tuple[date, date]]]:
    """Per player, 0-2 stretches [start, end): mostly a few days, some weeks, a few months."""
    opening, last_day = season_bounds(season_year)
    season_days = (last_day - opening).days
    out: dict[int, list[tuple[date, date]]] = {}
    for p in range(count):
        n = rng.choices((0, 1, 2), weights=(0.5, 0.35, 0.15))[0]
        for _ in range(n):
            start = opening + timedelta(days=rng.randint(0, season_days))
            kind = rng.random()
            length = (
                rng.randint(1, 5)
                if kind < 0.5
                else rng.randint(6, 25)
                if kind < 0.85
                else rng.randint(26, 70)
            )
            out.setdefault(p, []).append((start, start + timedelta(days=length)))
    return out


# ---------------------------------------------------------------------------------------------
# Box-score simulation
# ---------------------------------------------------------------------------------------------


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


def _split(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """Multinomial split of a team total over players (shots, free throws, rebounds...)."""
    counts = [0] * len(weights)
    if total > 0 and sum(weights) > 0:
        for i in rng.choices(range(len(weights)), weights=weights, k=total):
            counts[i] += 1
    return counts


@dataclass
class _Line:
    """One player's row in one game while it is being simulated."""

    player: int
    status: str
    active: bool
    minutes: float = 0.0
    attempts: list[int] = field(default_factory=lambda: [0, 0, 0])
    makes: list[int] = field(default_factory=lambda: [0, 0, 0])
    fta: int = 0
    ftm: int = 0
    tov: int = 0
    reb: int = 0
    ast: int = 0
    assisted: int = 0
    assists_known: bool = True

    @property
    def points(self) -> int:
        return 2 * (self.makes[0] + self.makes[1]) + 3 * self.makes[2] + self.ftm


@dataclass
class _Side:
    team: str
    lines: list[_Line]
    playing: list[_Line]
    stars_absent: list[int]
    starters_out: int
    oreb: int = 0
    blocks: tuple[int, int, int] = (0, 0, 0)


class _Simulator:
    """Plays the schedule in date order, carrying injury and return-from-injury state."""

    def __init__(self, rng: random.Random, season_year: int) -> None:
        self.rng = rng
        self.players, rosters = _make_rosters(rng)
        self.trades = _trades(rng, season_year)
        self.versions = _roster_versions(rosters, self.trades)
        self.injuries = _injuries(rng, len(self.players), season_year)
        self.missed: dict[tuple[int, int], int] = {}
        self.was_out: dict[int, bool] = {}
        self.pace = {t: rng.gauss(100.5, 2.0) for t in TEAMS}
        self.offense = {t: rng.gauss(1.0, 0.015) for t in TEAMS}
        self.defense = {t: {z: rng.gauss(1.0, 0.03) for z in ZONES} for t in TEAMS}

    # -- who is in the box -----------------------------------------------------------------

    def _availability(self, p: int, day: date) -> str:
        """'ok', 'dnp' (listed out) or 'gone' (injured, no row) for player p on `day`."""
        for n, (start, end) in enumerate(self.injuries.get(p, [])):
            if start <= day < end:
                key = (p, n)
                self.missed[key] = self.missed.get(key, 0) + 1
                return "dnp" if self.missed[key] <= 2 else "gone"
        return "ok"

    def _lineup(self, team: str, day: date) -> _Side:
        """Box lines for one team: 8-12 play, the rest of the healthy roster are DNPs."""
        rng = self.rng
        roster = _roster_on(self.versions[team], day)
        state = {p: self._availability(p, day) for p in roster}
        for p in roster[:STAR_SLOTS]:
            if state[p] == "ok" and self.players[p].age >= 30 and rng.random() < 0.03:
                state[p] = "rest"
        unavailable = sum(1 for p in roster[:ROSTER_SIZE] if state[p] != "ok")
        listed = roster[: ROSTER_SIZE + min(TWO_WAY, unavailable)]
        healthy = [p for p in listed if state[p] == "ok"]
        n_play = min(len(healthy), rng.choices(ROTATION, weights=ROTATION_WEIGHTS)[0])
        order = sorted(
            healthy,
            key=lambda p: roster.index(p) + rng.gauss(0, 3.0 if roster.index(p) > 5 else 0.3),
        )
        on_floor = set(order[:n_play])
        lines = [self._line(p, state[p], p in on_floor) for p in listed if state[p] != "gone"]
        for p in roster:
            self.was_out[p] = state[p] != "ok"
        playing = sorted((ln for ln in lines if ln.active), key=lambda ln: roster.index(ln.player))
        return _Side(
            team=team,
            lines=lines,
            playing=playing,
            stars_absent=[p for p in roster[:STAR_SLOTS] if p not in on_floor],
            starters_out=sum(1 for p in roster[:STARTER_SLOTS] if p not in on_floor),
        )

    def _line(self, p: int, state: str, plays: bool) -> _Line:
        """A box line with the pre-game injury report status the context table will show."""
        rng = self.rng
        if state in ("dnp", "rest"):
            return _Line(p, "doubtful" if rng.random() < 0.25 else "out", active=False)
        if not plays:
            return _Line(p, "available", active=False)
        if self.was_out.get(p):
            status = rng.choice(("questionable", "probable"))
        else:
            status = rng.choices(
                ("available", "probable", "questionable", "doubtful"), weights=(93, 4, 2.5, 0.5)
            )[0]
        return _Line(p, status, active=True)

    # -- what happens on the floor ---------------------------------------------------------

    def _minutes(self, side: _Side, total: float) -> None:
        """Share the team minutes by playing order, capped at 44 (49 with overtime)."""
        rng = self.rng
        cap = 44.0 if total <= 240 else 49.0
        weights = [
            MINUTES_BY_ORDER[min(i, len(MINUTES_BY_ORDER) - 1)] * rng.lognormvariate(0, 0.15)
            for i in range(len(side.playing))
        ]
        minutes = [w * total / sum(weights) for w in weights]
        for _ in range(3):
            excess = sum(max(0.0, m - cap) for m in minutes)
            minutes = [min(m, cap) for m in minutes]
            free = sum(m for m in minutes if m < cap)
            minutes = [m + excess * m / free if m < cap else m for m in minutes]
        for line, m in zip(side.playing, minutes, strict=True):
            line.minutes = max(1.0, round(m, 1))

    def _load(self, side: _Side, trait: str | None = None) -> list[float]:
        """Per playing player: minutes x usage, optionally times a tendency (fta_rate...)."""
        return [
            ln.minutes
            * self.players[ln.player].usage
            * (getattr(self.players[ln.player], trait) if trait else 1.0)
            for ln in side.playing
        ]

    def _shoot(self, side: _Side, opponent: str, possessions: float, home: bool) -> None:
        """Team totals from the pace, split over players by minutes x usage, then zone by zone."""
        rng = self.rng
        tov = min(28, max(4, round(rng.gauss(13.5, 3.4))))
        fta = min(48, max(4, round(rng.gauss(21.7, 6.0))))
        side.oreb = min(22, max(2, round(rng.gauss(10.5, 3.0))))
        fga = max(60, round(possessions + side.oreb - tov - 0.44 * fta))
        splits = zip(
            side.playing,
            _split(rng, fga, self._load(side)),
            _split(rng, fta, self._load(side, "fta_rate")),
            _split(rng, tov, self._load(side, "tov_rate")),
            strict=True,
        )
        boost = self.offense[side.team] * (1.012 if home else 0.988)
        for line, shots, ft, to in splits:
            player = self.players[line.player]
            for z, (zone, n) in enumerate(
                zip(ZONES, _split(rng, shots, list(player.mix)), strict=True)
            ):
                pct = ZONE_PCT[zone] * player.shooting * boost * self.defense[opponent][zone]
                made = _binomial(rng, n, min(0.95, pct))
                line.attempts[z], line.makes[z] = n, made
                line.assisted += _binomial(rng, made, ASSIST_RATE[zone])
            line.fta, line.ftm, line.tov = ft, _binomial(rng, ft, player.ft_pct), to
            line.assists_known = rng.random() > 0.02

    def _boards_and_assists(self, side: _Side, opp: _Side) -> None:
        """Rebounds from the opponent's misses, assists from this team's assisted makes."""
        rng = self.rng
        misses = [sum(ln.attempts[z] - ln.makes[z] for ln in opp.playing) for z in range(3)]
        dreb = max(15, round(sum(misses) * 0.72 + rng.gauss(0, 2.5)))
        minutes = [ln.minutes for ln in side.playing]
        rebounds = _split(
            rng,
            side.oreb + dreb,
            [
                m * self.players[ln.player].reb_rate
                for m, ln in zip(minutes, side.playing, strict=True)
            ],
        )
        assists = _split(
            rng,
            sum(ln.assisted for ln in side.playing),
            [
                m * self.players[ln.player].ast_rate
                for m, ln in zip(minutes, side.playing, strict=True)
            ],
        )
        for line, reb, ast in zip(side.playing, rebounds, assists, strict=True):
            line.reb, line.ast = reb, ast
        paint, mid, three = (_binomial(rng, misses[z], BLOCK_RATE[ZONES[z]]) for z in range(3))
        side.blocks = (paint, mid, three)

    def play(self, game: Game) -> tuple[_Side, _Side, float]:
        """Simulate one game; returns both sides and the team minutes (240, 265 with OT)."""
        rng = self.rng
        minutes = 265.0 if rng.random() < 0.06 else 240.0
        pace = (self.pace[game.home] + self.pace[game.away]) / 2 + rng.gauss(0, 3)
        pace = min(112.0, max(88.0, pace))
        home = self._lineup(game.home, game.game_date)
        away = self._lineup(game.away, game.game_date)
        for side, opp, is_home in ((home, away, True), (away, home, False)):
            self._minutes(side, minutes)
            self._shoot(side, opp.team, pace * minutes / 240 + rng.gauss(0, 1.5), is_home)
        self._boards_and_assists(home, away)
        self._boards_and_assists(away, home)
        if sum(ln.points for ln in home.playing) == sum(ln.points for ln in away.playing):
            winner = home.playing[0] if rng.random() < 0.55 else away.playing[0]
            winner.fta, winner.ftm = winner.fta + 1, winner.ftm + 1
        return home, away, minutes


# ---------------------------------------------------------------------------------------------
# From simulated games to Phase 3 frames
# ---------------------------------------------------------------------------------------------


def _box_frames(sim: _Simulator, schedule: list[Game]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Raw player lines (plus generator-only facts) and one row of team facts per team-game."""
    lines: dict[str, list[object]] = {c: [] for c in _RAW_LINE_COLUMNS}
    teams: dict[str, list[object]] = {c: [] for c in _RAW_TEAM_COLUMNS}
    for game in schedule:
        home, away, minutes = sim.play(game)
        for side, opp, is_home in ((home, away, True), (away, home, False)):
            team_values = (
                side.team,
                game.game_id,
                game.game_date,
                opp.team,
                is_home,
                minutes,
                side.oreb,
                *side.blocks,
                side.starters_out,
            )
            for col, value in zip(_RAW_TEAM_COLUMNS, team_values, strict=True):
                teams[col].append(value)
            for line in side.lines:
                player = sim.players[line.player]
                stars_out = sum(1 for p in side.stars_absent if p != line.player)
                values = (
                    player.lookup,
                    player.uid,
                    player.full_name,
                    game.game_id,
                    game.game_date,
                    side.team,
                    opp.team,
                    line.active,
                    line.minutes if line.active else 0.0,
                    line.attempts[0],
                    line.makes[0],
                    line.attempts[1],
                    line.makes[1],
                    line.attempts[2],
                    line.makes[2],
                    line.fta,
                    line.ftm,
                    line.reb,
                    line.ast,
                    line.tov,
                    line.assisted,
                    line.assists_known,
                    is_home,
                    line.status,
                    player.age,
                    min(2, stars_out),
                )
                for col, value in zip(_RAW_LINE_COLUMNS, values, strict=True):
                    lines[col].append(value)
    return pl.DataFrame(lines, schema=_RAW_LINE_COLUMNS), pl.DataFrame(
        teams, schema=_RAW_TEAM_COLUMNS
    )


_RAW_LINE_COLUMNS: dict[str, pl.DataType] = {
    "player_lookup": pl.String(),
    "universal_player_id": pl.String(),
    "player_full_name": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "is_active": pl.Boolean(),
    "minutes_played": pl.Float64(),
    "paint_attempts": pl.Int64(),
    "paint_makes": pl.Int64(),
    "mid_range_attempts": pl.Int64(),
    "mid_range_makes": pl.Int64(),
    "three_pt_attempts": pl.Int64(),
    "three_pt_makes": pl.Int64(),
    "ft_attempts": pl.Int64(),
    "ft_makes": pl.Int64(),
    "rebounds": pl.Int64(),
    "assists": pl.Int64(),
    "turnovers": pl.Int64(),
    "assisted": pl.Int64(),
    "assists_known": pl.Boolean(),
    "home_game": pl.Boolean(),
    "player_status": pl.String(),
    "player_age": pl.Int64(),
    "star_teammates_out": pl.Int64(),
}

_RAW_TEAM_COLUMNS: dict[str, pl.DataType] = {
    "team_abbr": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "opponent_team_abbr": pl.String(),
    "home_game": pl.Boolean(),
    "team_minutes": pl.Float64(),
    "oreb": pl.Int64(),
    "blocks_paint": pl.Int64(),
    "blocks_mid_range": pl.Int64(),
    "blocks_three_pt": pl.Int64(),
    "starters_out_count": pl.Int64(),
}


def _at(days: int, hours: int, minutes: int = 0) -> pl.Expr:
    """processed_at relative to game_date: summaries the night after, contexts the day before."""
    offset = pl.duration(days=days, hours=hours, minutes=minutes)
    return (pl.col("game_date").cast(pl.Datetime("us")) + offset).dt.replace_time_zone("UTC")


def _safe_ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """NULL instead of infinity or NaN when the denominator is 0 (SPEC section 3)."""
    return pl.when(den != 0).then(num / den)


def _team_totals(raw: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
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


def _player_game_summary(raw: pl.DataFrame, totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
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


def _team_offense(totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
    return totals.with_columns(
        season_year=pl.lit(season_year, pl.Int64), processed_at=_at(1, 3, 30)
    ).sort("game_date", "game_id", "home_game", descending=[False, False, True])


def _team_defense(totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
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


def _team_context(totals: pl.DataFrame, season_year: int) -> pl.DataFrame:
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


def _player_context(
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


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Exactly the real files' columns, order and dtypes."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def generate_season(seed: int = 7, season_year: int = 2024) -> dict[str, pl.DataFrame]:
    """A full synthetic regular season S as the five Phase 3 tables, keyed by table name.

    The same (seed, season_year) always gives identical frames; another seed another season.
    """
    rng = random.Random(f"phase4-demo:{seed}:{season_year}")
    schedule = _schedule(rng, season_year)
    sim = _Simulator(rng, season_year)
    raw, facts = _box_frames(sim, schedule)
    totals = _team_totals(raw, facts)
    summary = _player_game_summary(raw, totals, season_year)
    team_context = _team_context(totals, season_year)
    frames = {
        "player_game_summary": summary,
        "team_defense_game_summary": _team_defense(totals, season_year),
        "team_offense_game_summary": _team_offense(totals, season_year),
        "upcoming_player_game_context": _player_context(
            raw, summary, team_context, rng, season_year
        ),
        "upcoming_team_game_context": team_context,
    }
    return {name: _conform(frames[name], schema) for name, schema in SCHEMAS.items()}
