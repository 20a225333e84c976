"""The league (30 teams in conferences and divisions) and an NBA-like 82-game schedule:
opening night, All-Star break, back-to-backs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

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


def build_schedule(rng: random.Random, season_year: int) -> list[Game]:
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
