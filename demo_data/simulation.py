"""Box-score simulation: plays the schedule in date order into raw player lines and team
facts (zones, DNPs, injuries, stars out)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from demo_data.rosters import (
    ROSTER_SIZE,
    STAR_SLOTS,
    TWO_WAY,
    injuries,
    make_rosters,
    roster_on,
    roster_versions,
    trades,
)
from demo_data.schedule import TEAMS, Game
from demo_data.schemas import columns

STARTER_SLOTS = 5
ZONES = ("paint", "mid", "three")
ZONE_PCT = {"paint": 0.58, "mid": 0.41, "three": 0.36}
ASSIST_RATE = {"paint": 0.55, "mid": 0.38, "three": 0.84}
BLOCK_RATE = {"paint": 0.12, "mid": 0.04, "three": 0.012}
# How many players get minutes in a team-game (mean about 10; real box scores: 10.7).
ROTATION = (8, 9, 10, 11, 12)
ROTATION_WEIGHTS = (0.1, 0.25, 0.3, 0.23, 0.12)
# Per playing-order position: the first player on the floor gets the most minutes.
MINUTES_BY_ORDER = (34.5, 33, 31, 29, 27, 24, 22, 19, 16, 13, 10, 8, 6, 5, 4)


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


class Simulator:
    """Plays the schedule in date order, carrying injury and return-from-injury state."""

    def __init__(self, rng: random.Random, season_year: int) -> None:
        self.rng = rng
        self.players, rosters = make_rosters(rng)
        self.trades = trades(rng, season_year)
        self.versions = roster_versions(rosters, self.trades)
        self.injuries = injuries(rng, len(self.players), season_year)
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
        roster = roster_on(self.versions[team], day)
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


def box_frames(sim: Simulator, schedule: list[Game]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Raw player lines (plus generator-only facts) and one row of team facts per team-game."""
    lines: dict[str, list[object]] = {c: [] for c in RAW_LINE_COLUMNS}
    teams: dict[str, list[object]] = {c: [] for c in RAW_TEAM_COLUMNS}
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
            for col, value in zip(RAW_TEAM_COLUMNS, team_values, strict=True):
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
                for col, value in zip(RAW_LINE_COLUMNS, values, strict=True):
                    lines[col].append(value)
    return pl.DataFrame(lines, schema=RAW_LINE_COLUMNS), pl.DataFrame(
        teams, schema=RAW_TEAM_COLUMNS
    )


RAW_LINE_COLUMNS = columns(
    """
    player_lookup:str universal_player_id:str player_full_name:str game_id:str game_date:date
    team_abbr:str opponent_team_abbr:str is_active:bool minutes_played:float paint_attempts:int
    paint_makes:int mid_range_attempts:int mid_range_makes:int three_pt_attempts:int
    three_pt_makes:int ft_attempts:int ft_makes:int rebounds:int assists:int turnovers:int
    assisted:int assists_known:bool home_game:bool player_status:str player_age:int
    star_teammates_out:int
    """
)

RAW_TEAM_COLUMNS = columns(
    """
    team_abbr:str game_id:str game_date:date opponent_team_abbr:str home_game:bool
    team_minutes:float oreb:int blocks_paint:int blocks_mid_range:int blocks_three_pt:int
    starters_out_count:int
    """
)
