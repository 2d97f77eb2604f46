"""Reference recall@k on the per-user time split, for judging the two-tower model.

A trained model's recall means little on its own, so two references bracket it
on exactly the split the model is evaluated on (movielens.time_split):

* oracle: ranks each user's unseen items by the true logits the synthetic data
  was sampled from (generate_interactions.affinity_logits). Since every
  interaction is a softmax draw over the user's not-yet-seen items, nothing
  can do better in expectation; it needs oracle_factors.npz, so it is skipped
  for real MovieLens data.
* most_popular: ranks unseen items by their train interaction count, the
  floor any personalised model has to clearly beat.

Both exclude the user's train items, as a served recommender would. Recall is
hits in the top k over the user's eval items, averaged over eval users. The
two-tower model is expected to reach MODEL_ORACLE_FRACTION of the oracle and
MODEL_POPULAR_MULTIPLE times most_popular.

Usage (from the repository root):
    python -m data.interactions.reference_recall
    python -m data.interactions.reference_recall --data-dir path/to/ml-100k --output /tmp/ref.json
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Callable, Sequence

import numpy as np

from modules.two_tower import movielens
from .generate_interactions import DEFAULT_OUTPUT_DIR, ORACLE_FILE, affinity_logits

MODEL_ORACLE_FRACTION = 0.8
MODEL_POPULAR_MULTIPLE = 2.0
DEFAULT_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "reference_results.json")
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Users scored at once: bounds the dense users x items score block in memory.
_USER_BLOCK = 1024

ScoreFn = Callable[[np.ndarray], np.ndarray]


def recall_at_k(
    score_users: ScoreFn,
    train: Sequence[movielens.Interaction],
    evaluation: Sequence[movielens.Interaction],
    item_ids: np.ndarray,
    k: int = 10,
) -> float:
    """Mean over eval users of |top-k unseen items ∩ eval items| / |eval items|.

    ``score_users(user_ids)`` returns a (len(user_ids), len(item_ids)) score
    matrix whose columns follow ``item_ids``; higher is better.
    """
    column = {int(item): c for c, item in enumerate(item_ids)}
    users = np.array(sorted({row.user_id for row in evaluation}), dtype=np.int64)
    position = {int(user): p for p, user in enumerate(users)}

    def pairs(rows: Sequence[movielens.Interaction]) -> np.ndarray:
        """(eval-user position, item column) of the rows of eval users."""
        kept = [(position[row.user_id], column[row.item_id])
                for row in rows if row.user_id in position]
        return np.array(kept, dtype=np.int64).reshape(-1, 2)

    seen, held_out = pairs(train), pairs(evaluation)
    hits = np.zeros(users.size)
    for start in range(0, users.size, _USER_BLOCK):
        stop = min(start + _USER_BLOCK, users.size)
        scores = np.array(score_users(users[start:stop]), dtype=np.float64)
        block_seen = seen[(seen[:, 0] >= start) & (seen[:, 0] < stop)]
        scores[block_seen[:, 0] - start, block_seen[:, 1]] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        recommended = np.zeros(scores.shape, dtype=bool)
        recommended[np.arange(stop - start)[:, None], top] = True
        block_held = held_out[(held_out[:, 0] >= start) & (held_out[:, 0] < stop)]
        hit_rows = block_held[recommended[block_held[:, 0] - start, block_held[:, 1]], 0]
        hits += np.bincount(hit_rows, minlength=users.size)
    return float(np.mean(hits / np.bincount(held_out[:, 0], minlength=users.size)))


def popularity_scores(train: Sequence[movielens.Interaction], item_ids: np.ndarray) -> ScoreFn:
    """Scores every user by train count; ties go to the lower item id so the
    ranking does not depend on the sort algorithm."""
    column = {int(item): c for c, item in enumerate(item_ids)}
    counts = np.bincount([column[row.item_id] for row in train], minlength=item_ids.size)
    scores = counts - np.arange(item_ids.size) / item_ids.size
    return lambda users: np.broadcast_to(scores, (users.size, item_ids.size))


def oracle_scores(oracle_path: str, item_ids: np.ndarray) -> ScoreFn:
    """Scores by the generator's true logits; ids are factor rows + 1."""
    with np.load(oracle_path) as archive:
        oracle = {name: archive[name] for name in archive.files}
    return lambda users: affinity_logits(oracle, users - 1)[:, item_ids - 1]


def compute(data_dir: str, k: int = 10, eval_per_user: int = 2) -> dict:
    """Reference recalls and the model targets they imply, as a JSON-ready dict."""
    interactions, items = movielens.load_movielens(data_dir)
    train, evaluation = movielens.time_split(interactions, eval_per_user=eval_per_user)
    item_ids = np.array(sorted(items), dtype=np.int64)
    recall = {"most_popular": recall_at_k(
        popularity_scores(train, item_ids), train, evaluation, item_ids, k)}
    oracle_path = os.path.join(data_dir, ORACLE_FILE)
    if os.path.exists(oracle_path):
        recall["oracle"] = recall_at_k(
            oracle_scores(oracle_path, item_ids), train, evaluation, item_ids, k)
    targets = {"most_popular": MODEL_POPULAR_MULTIPLE * recall["most_popular"]}
    if "oracle" in recall:
        targets["oracle"] = MODEL_ORACLE_FRACTION * recall["oracle"]
    return {
        "data_dir": os.path.relpath(os.path.abspath(data_dir), _REPO_ROOT),
        "k": k,
        "split": {
            "method": "per-user latest by (timestamp, item_id)",
            "eval_per_user": eval_per_user,
            "train_interactions": len(train),
            "eval_interactions": len(evaluation),
            "eval_users": len({row.user_id for row in evaluation}),
            "items": len(items),
        },
        f"recall_at_{k}": {name: round(value, 4) for name, value in recall.items()},
        "model_target": {
            "rule": (f">= {MODEL_ORACLE_FRACTION} x oracle and "
                     f">= {MODEL_POPULAR_MULTIPLE} x most_popular"),
            f"min_recall_at_{k}": round(max(targets.values()), 4),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_OUTPUT_DIR,
                        help="directory holding u.data and u.item")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--eval-per-user", type=int, default=2)
    parser.add_argument("--output", default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    results = compute(args.data_dir, args.k, args.eval_per_user)
    text = json.dumps(results, indent=2) + "\n"
    print(text, end="")
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
