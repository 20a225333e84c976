"""Players (archetypes, names, ages), rosters, trades and injuries of the synthetic season."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

from demo_data.schedule import TEAMS, season_bounds

ROSTER_SIZE = 15  # standard contracts; two more two-way players per team are called up
TWO_WAY = 2
STAR_SLOTS = 3  # "top-3 scorers" for star_teammates_out


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


def make_rosters(rng: random.Random) -> tuple[list[Player], dict[str, list[int]]]:
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


def trades(rng: random.Random, season_year: int) -> list[Trade]:
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


def roster_versions(
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


def roster_on(versions: list[tuple[date, list[int]]], day: date) -> list[int]:
    return [r for since, r in versions if since <= day][-1]


def injuries(
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
