"""Seeded generator of synthetic interaction logs in the MovieLens-100k format.

Why synthetic: the pipeline and its tests need an interaction log that ships
with the repository (no download, no third-party licence) and whose structure
is known, so that the best achievable recall can be computed from the true
factors (see reference_recall.py) and a trained two-tower model judged against
it. The files have the layout of MovieLens-100k's u.data / u.item / u.user,
so the same pipeline runs unchanged on the real dataset.

Generative model, all randomness from one seed:

1. Genres: each of the 18 real genres gets a random unit direction in R^dim.
   Items draw their genres independently with MovieLens-100k's genre
   frequencies (at least one). A few items publish only the "unknown" flag,
   as in MovieLens, although their factors still follow their hidden genres.
2. Item factors: unit vectors mixing the mean direction of the item's genres
   (weight ``item_genre_weight``) with isotropic noise, so genres are
   informative item features without determining the item.
3. User factors: length sqrt(dim), mixing the mean direction of a few liked
   genres (drawn like item genres; weight ``user_genre_weight``) with
   isotropic noise. Taste built from genres, as people's is, is also what
   makes a user identifiable from a few dozen interactions; with isotropic
   users a learned model stalls at 0.81-0.87x the oracle (data/interactions/README.md).
4. Popularity: items get a random popularity rank r and a Zipf
   log-popularity -popularity_exponent * log(r).
5. Affinity logits: affinity_scale * user.item + log-popularity
   (``affinity_logits``); affinity_scale is the inverse softmax temperature.
6. Activity: each user has min_per_user interactions plus a log-normal share
   of the rest of the total, capped at half the catalogue.
7. Items: each user's items are a softmax sample without replacement from the
   logits (Gumbel-top-k); the sampling is the behavioural noise.
8. Timestamps: strictly increasing per user from a random start in the
   MovieLens-100k collection window, with short in-session gaps and occasional
   multi-day breaks. Items are put on a user's timeline in random order, so
   train and eval of a time split are samples of the same taste and the gap
   between a model and the oracle measures how well it learned that taste.
9. Ratings 1-5: user.item plus a per-user bias plus noise, cut at quantiles
   that reproduce MovieLens-100k's rating histogram.

10. Users: a u.user row per user (age, gender, occupation, zip code) drawn
    independently of everything above with MovieLens-100k's frequencies, so
    that code written for the real dataset's user file runs on this one. It
    comes from its own child of the seed, so adding it changed no byte of
    the other files.

The true factors go to oracle_factors.npz next to u.data and u.item.

Usage (from the repository root):
    python -m data.interactions.generate_interactions            # 100k rows
    python -m data.interactions.generate_interactions --scale 10 --output-dir /tmp/synthetic-1m
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
import zipfile
from typing import Mapping

import numpy as np

from modules.two_tower.movielens import GENRES, ITEMS_FILE, RATINGS_FILE

ORACLE_FILE = "oracle_factors.npz"
# MovieLens-100k's user file (modules/two_tower/movielens.py reads only u.data
# and u.item): user_id|age|gender|occupation|zip_code.
USERS_FILE = "u.user"
DEFAULT_OUTPUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthetic")

# Share of MovieLens-100k items flagged with each genre, in GENRES[1:] order.
_GENRE_FREQUENCY = np.array([
    0.149, 0.080, 0.025, 0.073, 0.300, 0.065, 0.030, 0.431, 0.013,
    0.014, 0.054, 0.033, 0.036, 0.146, 0.060, 0.149, 0.042, 0.016,
])
_UNKNOWN_GENRE_SHARE = 0.002
# MovieLens-100k's 21 occupations and the share of its 943 users in each.
_OCCUPATION_FREQUENCY = {
    "administrator": 79, "artist": 28, "doctor": 7, "educator": 95, "engineer": 67,
    "entertainment": 18, "executive": 32, "healthcare": 16, "homemaker": 7, "lawyer": 12,
    "librarian": 51, "marketing": 26, "none": 9, "other": 105, "programmer": 66,
    "retired": 14, "salesman": 12, "scientist": 31, "student": 196, "technician": 27,
    "writer": 45,
}
# MovieLens-100k's user ages (7-73): users per age band [lower, upper).
_AGE_BANDS = np.array([7, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 74])
_AGE_BAND_USERS = np.array([11, 66, 157, 175, 135, 106, 88, 80, 62, 32, 19, 12])
_MALE_SHARE = 670 / 943
# MovieLens-100k's share of ratings 1..4 cumulated (5 takes the rest).
_RATING_CDF = np.array([0.061, 0.175, 0.447, 0.788])
# MovieLens-100k's collection window (unix seconds).
_FIRST_TIMESTAMP, _LAST_TIMESTAMP = 874724710, 893286638
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Users per sampling block: bounds the dense users x items logits in memory.
_USER_BLOCK = 1024
# Fixed zip member time so that the .npz is byte-identical across runs.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Sizes and strengths of the planted structure (see the module docstring)."""

    num_users: int = 1500
    num_items: int = 1500
    num_interactions: int = 100_000
    dim: int = 16
    affinity_scale: float = 2.5
    popularity_exponent: float = 0.75
    item_genre_weight: float = 0.8
    user_genre_weight: float = 0.9
    min_per_user: int = 20
    activity_sigma: float = 0.8

    @classmethod
    def scaled(cls, scale: float, **overrides) -> "GeneratorConfig":
        """Users and interactions grow with ``scale``, the catalogue with its
        square root, so per-user activity stays MovieLens-like."""
        base = cls()
        sizes = {
            "num_users": round(base.num_users * scale),
            "num_items": round(base.num_items * math.sqrt(scale)),
            "num_interactions": round(base.num_interactions * scale),
        }
        sizes.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**sizes)


def affinity_logits(oracle: Mapping[str, np.ndarray], user_rows: np.ndarray) -> np.ndarray:
    """Logits the generator samples items from, shape (len(user_rows), num_items).

    ``oracle`` holds the arrays of oracle_factors.npz; row r of its factor
    matrices is user/item id r + 1. Shared with reference_recall.py so that the
    oracle ranks by exactly the quantity the data was sampled from.
    """
    user_factors = oracle["user_factors"][user_rows]
    return (float(oracle["affinity_scale"]) * user_factors @ oracle["item_factors"].T
            + oracle["item_log_popularity"])


def _draw_genres(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Boolean (rows, 18) genre matrix, MovieLens frequencies, >= 1 per row."""
    genres = rng.random((rows, _GENRE_FREQUENCY.size)) < _GENRE_FREQUENCY
    empty = ~genres.any(axis=1)
    fallback = rng.choice(_GENRE_FREQUENCY.size, size=int(empty.sum()),
                          p=_GENRE_FREQUENCY / _GENRE_FREQUENCY.sum())
    genres[np.flatnonzero(empty), fallback] = True
    return genres


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _mixed_directions(rng: np.random.Generator, genres: np.ndarray,
                      genre_directions: np.ndarray, weight: float) -> np.ndarray:
    """Unit rows: ``weight`` x the mean direction of each row's genres plus
    (1 - weight) x a random direction."""
    noise = _unit_rows(rng.normal(size=(genres.shape[0], genre_directions.shape[1])))
    return _unit_rows(weight * _unit_rows(genres @ genre_directions) + (1 - weight) * noise)


def _activity(rng: np.random.Generator, config: GeneratorConfig) -> np.ndarray:
    """Interactions per user: the minimum plus a log-normal share of the rest,
    rounded by largest remainder so the total is exact unless the cap binds."""
    spare = config.num_interactions - config.min_per_user * config.num_users
    if spare < 0:
        raise ValueError(
            f"{config.num_interactions} interactions cannot give {config.num_users} "
            f"users {config.min_per_user} each")
    weights = rng.lognormal(0.0, config.activity_sigma, config.num_users)
    shares = spare * weights / weights.sum()
    extra = np.floor(shares).astype(np.int64)
    leftover = spare - int(extra.sum())
    extra[np.argsort(extra - shares, kind="stable")[:leftover]] += 1
    return np.minimum(config.min_per_user + extra, config.num_items // 2)


def _sample_items(rng: np.random.Generator, oracle: Mapping[str, np.ndarray],
                  counts: np.ndarray) -> np.ndarray:
    """Each user's item rows (user-major): the counts[u] largest of logits plus
    Gumbel noise, which is softmax sampling without replacement."""
    chosen = []
    for start in range(0, counts.size, _USER_BLOCK):
        block_counts = counts[start:start + _USER_BLOCK]
        perturbed = affinity_logits(oracle, np.arange(start, start + block_counts.size))
        perturbed += rng.gumbel(size=perturbed.shape)
        widest = int(block_counts.max())
        top = np.argpartition(-perturbed, widest - 1, axis=1)[:, :widest]
        order = np.argsort(-np.take_along_axis(perturbed, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        chosen.append(top[np.arange(widest) < block_counts[:, None]])
    return np.concatenate(chosen)


def _timestamps(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Strictly increasing unix seconds per user, user-major like the items."""
    num_users, total = counts.size, int(counts.sum())
    user_of_row = np.repeat(np.arange(num_users), counts)
    mean_gap = rng.lognormal(math.log(300.0), 1.0, num_users)[user_of_row]
    gaps = 1 + np.floor(rng.exponential(mean_gap))
    breaks = rng.random(total) < 0.03
    gaps[breaks] += np.floor(rng.exponential(3 * 86400.0, int(breaks.sum())))
    gaps[np.cumsum(counts) - counts] = 0  # each user's first row is their start
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[np.cumsum(counts) - counts], counts)
    start = rng.integers(_FIRST_TIMESTAMP, _LAST_TIMESTAMP, num_users)
    return start[user_of_row] + elapsed.astype(np.int64)


def _ratings(rng: np.random.Generator, oracle: Mapping[str, np.ndarray],
             user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """1-5 from user.item + user bias + noise, cut at MovieLens' rating quantiles."""
    dots = np.einsum("ij,ij->i", oracle["user_factors"][user_rows],
                     oracle["item_factors"][item_rows])
    user_bias = rng.normal(0.0, 0.5, oracle["user_factors"].shape[0])
    scores = dots + user_bias[user_rows] + rng.normal(0.0, 0.7, dots.size)
    return 1 + np.searchsorted(np.quantile(scores, _RATING_CDF), scores)


def _item_lines(rng: np.random.Generator, genres: np.ndarray,
                unknown: np.ndarray) -> list[str]:
    """u.item rows; no IMDb URL, since a made-up one would point at a real film."""
    num_items = genres.shape[0]
    years = 1998 - np.minimum(np.floor(rng.exponential(6.0, num_items)), 70).astype(int)
    months = rng.integers(0, 12, num_items)
    days = rng.integers(1, 29, num_items)
    flags = np.zeros((num_items, len(GENRES)), dtype=int)
    flags[:, 1:] = genres
    flags[unknown] = 0
    flags[unknown, 0] = 1
    lines = []
    for row in range(num_items):
        year = years[row]
        date = f"{days[row]:02d}-{_MONTHS[months[row]]}-{year}"
        lines.append("|".join([str(row + 1), f"Synthetic Movie {row + 1} ({year})",
                               date, "", ""] + [str(f) for f in flags[row]]) + "\n")
    return lines


def _user_lines(rng: np.random.Generator, num_users: int) -> list[str]:
    """u.user rows: ages uniform within a MovieLens age band drawn with its
    frequency, gender and occupation with MovieLens' shares, 5-digit zips."""
    bands = rng.choice(_AGE_BAND_USERS.size, size=num_users,
                       p=_AGE_BAND_USERS / _AGE_BAND_USERS.sum())
    ages = rng.integers(_AGE_BANDS[bands], _AGE_BANDS[bands + 1])
    genders = np.where(rng.random(num_users) < _MALE_SHARE, "M", "F")
    names = list(_OCCUPATION_FREQUENCY)
    counts = np.array(list(_OCCUPATION_FREQUENCY.values()))
    occupations = rng.choice(len(names), size=num_users, p=counts / counts.sum())
    zip_codes = rng.integers(1000, 100000, num_users)
    return [f"{user + 1}|{ages[user]}|{genders[user]}|{names[occupations[user]]}|"
            f"{zip_codes[user]:05d}\n" for user in range(num_users)]


def _write_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez, but with fixed zip timestamps so that reruns are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)


def generate(config: GeneratorConfig, seed: int, output_dir: str) -> int:
    """Writes u.data, u.item, u.user and oracle_factors.npz; returns the row count."""
    # Children are numbered, so spawning a tenth (user_rng, for u.user) left
    # the first nine streams and hence the other files unchanged.
    (genre_rng, factor_rng, popularity_rng, activity_rng, sample_rng,
     time_rng, rating_rng, item_rng, order_rng, user_rng) = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10))

    genres = _draw_genres(genre_rng, config.num_items)
    unknown = genre_rng.random(config.num_items) < _UNKNOWN_GENRE_SHARE
    liked_genres = _draw_genres(genre_rng, config.num_users)
    genre_directions = _unit_rows(factor_rng.normal(size=(genres.shape[1], config.dim)))
    oracle = {
        "user_factors": math.sqrt(config.dim) * _mixed_directions(
            factor_rng, liked_genres, genre_directions, config.user_genre_weight),
        "item_factors": _mixed_directions(
            factor_rng, genres, genre_directions, config.item_genre_weight),
        "item_log_popularity": -config.popularity_exponent * np.log(
            1 + popularity_rng.permutation(config.num_items)),
        "affinity_scale": np.float64(config.affinity_scale),
    }

    counts = _activity(activity_rng, config)
    user_rows = np.repeat(np.arange(config.num_users), counts)
    item_rows = _sample_items(sample_rng, oracle, counts)
    # Random position on the user's timeline (user_rows is sorted by user).
    item_rows = item_rows[np.lexsort((time_rng.random(item_rows.size), user_rows))]
    timestamps = _timestamps(time_rng, counts)
    ratings = _ratings(rating_rng, oracle, user_rows, item_rows)

    # MovieLens ships u.data in no particular order; so does this file, which
    # keeps consumers from relying on it being sorted.
    order = order_rng.permutation(user_rows.size)
    columns = (user_rows[order] + 1, item_rows[order] + 1, ratings[order], timestamps[order])
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, RATINGS_FILE), "w", encoding="ascii", newline="\n") as f:
        f.write("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in zip(*(c.tolist() for c in columns))))
    with open(os.path.join(output_dir, ITEMS_FILE), "w", encoding="latin-1", newline="\n") as f:
        f.writelines(_item_lines(item_rng, genres, unknown))
    _write_npz(os.path.join(output_dir, ORACLE_FILE), oracle)
    with open(os.path.join(output_dir, USERS_FILE), "w", encoding="ascii", newline="\n") as f:
        f.writelines(_user_lines(user_rng, config.num_users))
    return int(user_rows.size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply users and interactions by this, items by its "
                             "square root (10 gives 1M interactions)")
    parser.add_argument("--num-users", type=int, help="overrides the scaled value")
    parser.add_argument("--num-items", type=int, help="overrides the scaled value")
    parser.add_argument("--num-interactions", type=int, help="overrides the scaled value")
    args = parser.parse_args(argv)
    config = GeneratorConfig.scaled(args.scale, num_users=args.num_users,
                                    num_items=args.num_items,
                                    num_interactions=args.num_interactions)
    started = time.perf_counter()
    rows = generate(config, args.seed, args.output_dir)
    print(f"wrote {rows} interactions of {config.num_users} users on "
          f"{config.num_items} items to {args.output_dir} "
          f"in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
