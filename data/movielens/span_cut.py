"""Cuts a MovieLens-format log into spans by time, as a live log would have
arrived: `OUT/span-<N>/` holds the interactions of the N-th period (u.data)
and the catalogue and users known by its end (u.item and u.user, only
growing: new items and users appear span after span).

    python -m data.movielens.span_cut --source data/movielens/ml-100k \\
        --output build/ml-100k-weekly --days 7

Periods are whole `--days` from the first interaction (`--first-days` makes
the first span longer: the history an initial window trains on). Lines are
copied untouched, in their input order; a period with no interaction gets no
span (the spans stay numbered without gaps).
"""
import argparse
import os
from typing import Dict, List, Optional, Sequence

from modules.two_tower import movielens

SECONDS_PER_DAY = 86400


def _rows(path: str) -> List[bytes]:
  with open(path, "rb") as f:
    return [line if line.endswith(b"\n") else line + b"\n" for line in f if line.strip()]


def _first_field(line: bytes, separator: bytes) -> int:
  return int(line.split(separator, 1)[0])


def span_starts(timestamps: Sequence[int], days: float, first_days: Optional[float] = None
                ) -> List[int]:
  """The start time of each non-empty period, ascending."""
  first = min(timestamps)
  opening = first + int((first_days or days) * SECONDS_PER_DAY)
  period = int(days * SECONDS_PER_DAY)
  starts = {first if t < opening else opening + (t - opening) // period * period
            for t in timestamps}
  return sorted(starts)


def cut(source_dir: str, output_dir: str, days: float,
        first_days: Optional[float] = None) -> Dict[int, int]:
  """Writes `output_dir`/span-<N>/ for each period; returns {span: rows}."""
  ratings = _rows(os.path.join(source_dir, movielens.RATINGS_FILE))
  fields = [line.split(b"\t") for line in ratings]
  timestamps = [int(f[3]) for f in fields]
  starts = span_starts(timestamps, days, first_days)
  items = {_first_field(line, b"|"): line
           for line in _rows(os.path.join(source_dir, movielens.ITEMS_FILE))}
  users_path = os.path.join(source_dir, movielens.USERS_FILE)
  users = ({_first_field(line, b"|"): line for line in _rows(users_path)}
           if os.path.exists(users_path) else {})

  def span_of(timestamp: int) -> int:
    return next(number for number in range(len(starts), 0, -1)
                if timestamp >= starts[number - 1])

  by_span: Dict[int, List[int]] = {}
  for index, timestamp in enumerate(timestamps):
    by_span.setdefault(span_of(timestamp), []).append(index)
  seen_items, seen_users, counts = set(), set(), {}
  for number in sorted(by_span):
    rows = by_span[number]
    seen_users.update(int(fields[i][0]) for i in rows)
    seen_items.update(int(fields[i][1]) for i in rows)
    span_dir = os.path.join(output_dir, f"span-{number}")
    os.makedirs(span_dir, exist_ok=True)
    with open(os.path.join(span_dir, movielens.RATINGS_FILE), "wb") as f:
      f.writelines(ratings[i] for i in rows)
    with open(os.path.join(span_dir, movielens.ITEMS_FILE), "wb") as f:
      f.writelines(items[i] for i in sorted(seen_items))
    if users:
      with open(os.path.join(span_dir, movielens.USERS_FILE), "wb") as f:
        f.writelines(users[u] for u in sorted(seen_users) if u in users)
    counts[number] = len(rows)
  return counts


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--source", required=True, help="a MovieLens-format directory")
  parser.add_argument("--output", required=True, help="where span-<N>/ folders are written")
  parser.add_argument("--days", type=float, default=7.0, help="length of a span")
  parser.add_argument("--first-days", type=float,
                      help="length of the first span (default: --days)")
  args = parser.parse_args(argv)
  counts = cut(args.source, args.output, args.days, args.first_days)
  print(f"wrote {len(counts)} spans to {args.output}: "
        + ", ".join(f"{n}: {rows}" for n, rows in counts.items()))


if __name__ == "__main__":
  main()
