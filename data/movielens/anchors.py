"""Recall@10 of simple, well-understood recommenders on real MovieLens-100k.

Why: on real data there are no true factors and hence no oracle (compare
data/interactions/reference_recall.py), so a trained two-tower model is
judged against anchors instead, computed on exactly the split it is
evaluated on (movielens.time_split: each user's last 2 interactions by
(timestamp, item_id) held out). From weakest to strongest:

* most_popular: train interaction counts (reference_recall.popularity_scores).
* item_knn: cosine similarity between items' columns of the binary
  user x item train matrix X, full neighbourhood; a user's score for an item
  is the sum of its similarities to the user's train items.
* ease: EASE (Steck 2019), B = I - P / diag(P) with P = (X^T X + lambda I)^-1,
  so diag(B) = 0; scores are X B.
* ease_recency: the same B applied to a recency-weighted profile instead of
  the user's row of X: their last ``window`` train items, weighted
  ``decay ** position`` with position 0 the most recent. The time split asks
  what comes next, which recent items predict better than old ones.

All rank the full catalogue, never recommend an item the user has in train
and score recall@k with reference_recall.recall_at_k.

Protocols: ``eval`` fits on the train part of the time split and scores its
held-out rows. ``validation`` splits that train part again the same way
(each user's last 2 train interactions become validation) and fits on the
rest, so that hyper-parameters such as lambda, decay and window can be
chosen without looking at the eval rows.

On data in spans (``--data-dir`` holding span-<N>/ folders, e.g. from
data/movielens/span_cut.py), the anchors are scored as the pipeline splits a
window (components/spans.py): ``--span N --window K`` read spans N-K+1..N,
and each user active in span N has their last 2 interactions of span N held
out; everything before them in the window is fitted on.

Usage (from the repository root, after python -m data.movielens.fetch_ml100k):
    python -m data.movielens.anchors                          # writes anchor_results.json
    python -m data.movielens.anchors --protocol validation    # anchor_results_validation.json
    python -m data.movielens.anchors --data-dir SPANS --span 7 --window 4 --output OUT.json
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Mapping, Sequence

import numpy as np

from components import spans
from components.input_errors import InputDataError
from components.movielens_example_gen.executor import load_window
from data.interactions.reference_recall import ScoreFn, popularity_scores, recall_at_k
from modules.two_tower import movielens

EASE_LAMBDA = 300.0
RECENCY_DECAY = 0.9
RECENCY_WINDOW = 50
HELD_OUT_PER_USER = 2
PROTOCOLS = ("eval", "validation")

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(os.path.dirname(_HERE))
DEFAULT_DATA_DIR = os.path.join(_HERE, "ml-100k")
DEFAULT_OUTPUTS = {
    "eval": os.path.join(_HERE, "anchor_results.json"),
    "validation": os.path.join(_HERE, "anchor_results_validation.json"),
}
_LABELS = {
    "most_popular": "most popular",
    "item_knn": "item-kNN (cosine, full neighbourhood)",
    "ease": "EASE",
    "ease_recency": "EASE, recency-weighted profile",
}


def split(interactions: Sequence[movielens.Interaction], protocol: str,
          eval_span: int | None = None
          ) -> tuple[list[movielens.Interaction], list[movielens.Interaction]]:
    """(fit rows, held-out rows) of ``protocol`` (see the module docstring);
    with ``eval_span``, only rows of that span are held out."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    train, held_out = movielens.time_split(interactions, eval_per_user=HELD_OUT_PER_USER,
                                           eval_span=eval_span)
    if protocol == "validation":
        train, held_out = movielens.time_split(train, eval_per_user=HELD_OUT_PER_USER)
    return train, held_out


def binary_matrix(train: Sequence[movielens.Interaction], user_rows: Mapping[int, int],
                  item_ids: np.ndarray) -> np.ndarray:
    """float64 users x items matrix, 1 where the user has the item in train."""
    column = {int(item): c for c, item in enumerate(item_ids)}
    matrix = np.zeros((len(user_rows), item_ids.size))
    for row in train:
        matrix[user_rows[row.user_id], column[row.item_id]] = 1.0
    return matrix


def item_knn_similarity(matrix: np.ndarray) -> np.ndarray:
    """Cosine similarity of the item columns; 0 for items nobody has."""
    cooccurrence = matrix.T @ matrix
    norms = np.sqrt(np.diag(cooccurrence))
    denominator = np.outer(norms, norms)
    return np.divide(cooccurrence, denominator, out=np.zeros_like(cooccurrence),
                     where=denominator > 0)


def ease_weights(matrix: np.ndarray, lam: float) -> np.ndarray:
    """EASE's item-item weights B = I - P / diag(P), P = (X^T X + lam I)^-1."""
    precision = np.linalg.inv(matrix.T @ matrix + lam * np.eye(matrix.shape[1]))
    weights = -precision / np.diag(precision)  # column j divided by P_jj
    np.fill_diagonal(weights, 0.0)
    return weights


def recency_profiles(train: Sequence[movielens.Interaction], user_rows: Mapping[int, int],
                     item_ids: np.ndarray, decay: float, window: int) -> np.ndarray:
    """Users x items: ``decay ** position`` on each user's last ``window``
    train items by (timestamp, item_id), position 0 the most recent."""
    column = {int(item): c for c, item in enumerate(item_ids)}
    history: dict[int, list[movielens.Interaction]] = {user: [] for user in user_rows}
    for row in train:
        history[row.user_id].append(row)
    profiles = np.zeros((len(user_rows), item_ids.size))
    for user, rows in history.items():
        rows.sort(key=lambda r: (r.timestamp, r.item_id), reverse=True)
        for position, row in enumerate(rows[:window]):
            profiles[user_rows[user], column[row.item_id]] = decay ** position
    return profiles


def _rows_times(user_rows: Mapping[int, int], left: np.ndarray, right: np.ndarray) -> ScoreFn:
    """score_users for recall_at_k: the users' rows of ``left`` times ``right``."""
    return lambda users: left[[user_rows[int(user)] for user in users]] @ right


def anchor_recalls(train: Sequence[movielens.Interaction],
                   held_out: Sequence[movielens.Interaction], item_ids: np.ndarray,
                   k: int = 10, lam: float = EASE_LAMBDA, decay: float = RECENCY_DECAY,
                   window: int = RECENCY_WINDOW) -> dict[str, float]:
    """recall@k of every anchor fitted on ``train`` and scored on ``held_out``."""
    user_rows = {user: r for r, user in enumerate(sorted({row.user_id for row in train}))}
    matrix = binary_matrix(train, user_rows, item_ids)
    ease = ease_weights(matrix, lam)
    scorers = {
        "most_popular": popularity_scores(train, item_ids),
        "item_knn": _rows_times(user_rows, matrix, item_knn_similarity(matrix)),
        "ease": _rows_times(user_rows, matrix, ease),
        "ease_recency": _rows_times(
            user_rows, recency_profiles(train, user_rows, item_ids, decay, window), ease),
    }
    return {name: recall_at_k(score, train, held_out, item_ids, k)
            for name, score in scorers.items()}


def compute(data_dir: str, protocol: str = "eval", k: int = 10,
            window: spans.SpanWindow | None = None) -> dict:
    """The anchors of ``protocol`` on the MovieLens files in ``data_dir`` (or
    on ``window``, a window of its spans), JSON-ready."""
    if window is None:
        interactions, items = movielens.load_movielens(data_dir)
    else:
        interactions, _ = load_window(window)
        items = movielens.read_items(
            os.path.join(window.directory(window.newest), movielens.ITEMS_FILE))
    train, held_out = split(interactions, protocol,
                            window.newest if window is not None else None)
    item_ids = np.array(sorted(items), dtype=np.int64)
    recall = anchor_recalls(train, held_out, item_ids, k)
    window_keys = {"spans": list(window.spans)} if window is not None else {}
    return {
        "protocol": protocol,
        "data_dir": os.path.relpath(os.path.abspath(data_dir), _REPO_ROOT),
        **window_keys,
        "k": k,
        "split": {
            "method": ("per-user latest by (timestamp, item_id)" if protocol == "eval" else
                       "per-user latest by (timestamp, item_id), applied twice"),
            "held_out_per_user": HELD_OUT_PER_USER,
            "interactions": len(interactions),
            "fit_interactions": len(train),
            "held_out_interactions": len(held_out),
            "held_out_users": len({row.user_id for row in held_out}),
            "items": len(items),
        },
        "parameters": {
            "ease_lambda": EASE_LAMBDA,
            "recency_decay": RECENCY_DECAY,
            "recency_window": RECENCY_WINDOW,
        },
        f"recall_at_{k}": {name: round(value, 4) for name, value in recall.items()},
    }


def markdown_table(results: dict) -> str:
    """The recalls of ``compute``'s result as a markdown table."""
    k = results["k"]
    lines = [f"| Anchor ({results['protocol']} protocol) | recall@{k} |", "| --- | --- |"]
    lines += [f"| {_LABELS[name]} | {value:.4f} |"
              for name, value in results[f"recall_at_{k}"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="directory holding u.data and u.item (default: %(default)s)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="eval")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--output", help="JSON result file (default: anchor_results.json "
                                         "next to this script, _validation for that protocol)")
    parser.add_argument("--span", type=int, default=0,
                        help="data in spans: the window's newest span (default: the newest)")
    parser.add_argument("--window", type=int, default=1,
                        help="data in spans: how many spans the window holds")
    args = parser.parse_args(argv)
    try:
        window = spans.resolve(args.data_dir, spans.SpanRequest(args.span, args.window,
                                                                full_window=True))
    except InputDataError as error:
        parser.error(str(error))
    if window is None and not os.path.exists(os.path.join(args.data_dir,
                                                          movielens.RATINGS_FILE)):
        parser.error(f"{args.data_dir} has no {movielens.RATINGS_FILE}; build it with "
                     "`python -m data.movielens.fetch_ml100k` (or `make movielens`)")
    if window is not None and not args.output:
        parser.error("on data in spans, name the result file with --output")
    results = compute(args.data_dir, args.protocol, args.k, window)
    with open(args.output or DEFAULT_OUTPUTS[args.protocol], "w", encoding="utf-8") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    print(markdown_table(results), end="")


if __name__ == "__main__":
    main()
