"""Writes the validation view of a MovieLens-format log: the log without
each user's held-out (eval) interactions.

Running the pipeline on the view makes its per-user time split hold out each
user's last 2 *train* interactions: the validation split the two-tower
family's hyper-parameters are chosen on, carved from train by time, so the
eval split is never used to choose anything. u.item and u.user are copied
unchanged.

Usage (from the repository root):
    python -m data.movielens.validation_view      # data/movielens/ml-100k -> ml-100k-validation
    python local_runner.py --model two_tower --data-dir data/movielens/ml-100k-validation \\
        --no-drift-check --train-steps 1140
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from modules.two_tower import movielens

_HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SOURCE = os.path.join(_HERE, "ml-100k")
DEFAULT_OUTPUT = os.path.join(_HERE, "ml-100k-validation")


def write_view(source_dir: str, output_dir: str) -> int:
    """Writes the view; returns how many interactions it keeps."""
    interactions, _ = movielens.load_movielens(source_dir)
    train, _ = movielens.time_split(interactions)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, movielens.RATINGS_FILE), "w", encoding="ascii") as f:
        for row in train:
            f.write(f"{row.user_id}\t{row.item_id}\t{row.rating}\t{row.timestamp}\n")
    for name in (movielens.ITEMS_FILE, movielens.USERS_FILE):
        if os.path.exists(os.path.join(source_dir, name)):
            shutil.copyfile(os.path.join(source_dir, name), os.path.join(output_dir, name))
    return len(train)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source-dir", default=DEFAULT_SOURCE)
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.source_dir, movielens.RATINGS_FILE)):
        parser.error(f"{args.source_dir} has no {movielens.RATINGS_FILE}; build it with "
                     "`make movielens`")
    kept = write_view(args.source_dir, args.output_dir)
    print(f"{args.output_dir}: {kept} interactions (each user's eval rows left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
