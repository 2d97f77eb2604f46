"""Tests for the two-tower interaction data: generator, MovieLens reader, split,
and the shipped dataset and reference results staying in sync with the code."""
import collections
import json
import pathlib
import sys

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # data/ is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from data.interactions import generate_interactions as gen  # noqa: E402
from modules.two_tower import movielens  # noqa: E402
from data.interactions import reference_recall  # noqa: E402

SHIPPED_DIR = REPO_ROOT / "data" / "interactions" / "synthetic"
SMALL = gen.GeneratorConfig(num_users=120, num_items=600, num_interactions=6000)
OUTPUT_FILES = (movielens.RATINGS_FILE, movielens.ITEMS_FILE, gen.USERS_FILE, gen.ORACLE_FILE)

# Rows in the exact MovieLens-100k layout, including a latin-1 accented title
# and item 267, whose title and dates are empty in the real file.
REAL_ITEMS = (
    b"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)"
    b"|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    b"267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    b"1123|Mis\xe9rables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Mis%E9rables%2C%20Les%20%281995%29"
    b"|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0\n"
)
REAL_RATINGS = b"196\t1\t3\t881250949\n196\t267\t3\t881251955\n22\t1123\t1\t878887116\n"


def _generate(tmp_path: pathlib.Path, name: str, seed: int,
              config: gen.GeneratorConfig = SMALL) -> pathlib.Path:
    out = tmp_path / name
    gen.generate(config, seed, str(out))
    return out


def _write(directory: pathlib.Path, ratings: bytes, items: bytes = REAL_ITEMS) -> pathlib.Path:
    directory.mkdir(exist_ok=True)
    (directory / movielens.RATINGS_FILE).write_bytes(ratings)
    (directory / movielens.ITEMS_FILE).write_bytes(items)
    return directory


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    first = _generate(tmp_path, "a", seed=0)
    second = _generate(tmp_path, "b", seed=0)
    other = _generate(tmp_path, "c", seed=1)
    for name in OUTPUT_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / movielens.RATINGS_FILE).read_bytes() != (other / movielens.RATINGS_FILE).read_bytes()
    assert (first / gen.ORACLE_FILE).read_bytes() != (other / gen.ORACLE_FILE).read_bytes()
    assert (first / gen.USERS_FILE).read_bytes() != (other / gen.USERS_FILE).read_bytes()


def test_generated_files_follow_movielens_format(tmp_path):
    out = _generate(tmp_path, "data", seed=3)
    rows = [line.split("\t") for line in
            (out / movielens.RATINGS_FILE).read_text("ascii").splitlines()]
    assert len(rows) == SMALL.num_interactions
    assert all(len(row) == 4 and all(f.isdigit() for f in row) for row in rows)
    users, items, ratings, timestamps = np.array(rows, dtype=np.int64).T
    assert users.min() == 1 and users.max() == SMALL.num_users
    assert items.min() >= 1 and items.max() <= SMALL.num_items
    assert set(ratings) == {1, 2, 3, 4, 5}
    assert len(set(zip(users, items))) == len(rows), "users never re-interact"
    per_user = collections.Counter(users.tolist())
    assert min(per_user.values()) >= SMALL.min_per_user
    for user in per_user:
        times = timestamps[users == user]
        assert len(set(times)) == len(times), "timestamps strictly increase per user"

    item_lines = (out / movielens.ITEMS_FILE).read_text("latin-1").splitlines()
    assert len(item_lines) == SMALL.num_items
    for item_id, line in enumerate(item_lines, start=1):
        fields = line.split("|")
        assert len(fields) == 5 + len(movielens.GENRES)
        assert int(fields[0]) == item_id
        assert set(fields[5:]) <= {"0", "1"} and "1" in fields[5:]

    with np.load(out / gen.ORACLE_FILE) as oracle:
        assert oracle["user_factors"].shape == (SMALL.num_users, SMALL.dim)
        assert oracle["item_factors"].shape == (SMALL.num_items, SMALL.dim)
        assert oracle["item_log_popularity"].shape == (SMALL.num_items,)

    user_lines = (out / gen.USERS_FILE).read_text("ascii").splitlines()
    assert len(user_lines) == SMALL.num_users
    for user_id, line in enumerate(user_lines, start=1):
        uid, age, gender, occupation, zip_code = line.split("|")
        assert int(uid) == user_id
        assert 7 <= int(age) <= 73
        assert gender in ("M", "F")
        assert occupation in gen._OCCUPATION_FREQUENCY
        assert len(zip_code) == 5 and zip_code.isdigit()

    interactions, _ = movielens.load_movielens(str(out))
    assert all(row.genres for row in interactions)


def test_scale_grows_users_and_interactions_and_catalogue_by_root():
    config = gen.GeneratorConfig.scaled(10)
    assert (config.num_users, config.num_items, config.num_interactions) == (15000, 4743, 1_000_000)
    assert gen.GeneratorConfig.scaled(10, num_items=2000).num_items == 2000


def test_reader_handles_real_movielens_rows_with_latin1_titles(tmp_path):
    interactions, items = movielens.load_movielens(str(_write(tmp_path / "ml", REAL_RATINGS)))
    assert items[1123].title == "Misérables, Les (1995)"
    assert items[1].genres == ("Animation", "Children's", "Comedy")
    assert items[267] == movielens.Item(267, "unknown", "", ("unknown",))
    # The u.data fields and the joined genres (Interaction may carry more item fields).
    assert interactions[0][:5] == (196, 1, 3, 881250949, ("Animation", "Children's", "Comedy"))
    assert interactions[2].genres == ("Drama", "War")


@pytest.mark.parametrize("ratings, line, reason", [
    (b"196\t1\t3\t881250949\n196\t267\t3\n", 2, "expected 4 tab-separated fields, got 3"),
    (b"196 1 3 881250949\n", 1, "expected 4 tab-separated fields, got 1"),
    (b"196\t1\t3\t881250949\nabc\t1\t3\t881250949\n", 2, "user_id is not a non-negative integer: 'abc'"),
    (b"196\t1.5\t3\t881250949\n", 1, "item_id is not a non-negative integer: '1.5'"),
    (b"196\t1\t3\t881250949\n\n196\t999\t3\t881250949\n", 3, "item_id 999 is not in u.item"),
    (b"196\t1\t6\t881250949\n", 1, "rating must be 1-5, got 6"),
])
def test_malformed_ratings_name_file_and_line(tmp_path, ratings, line, reason):
    directory = _write(tmp_path / "ml", ratings)
    with pytest.raises(movielens.MovieLensFormatError) as error:
        movielens.load_movielens(str(directory))
    path = str(directory / movielens.RATINGS_FILE)
    assert str(error.value) == f"{path}:{line}: {reason}"
    assert (error.value.path, error.value.line_number) == (path, line)


@pytest.mark.parametrize("items, line, reason", [
    (REAL_ITEMS + b"5|Copycat (1995)|01-Jan-1995||\n", 4, "expected 24 '|'-separated fields, got 5"),
    (b"x" + REAL_ITEMS, 1, "item_id is not a non-negative integer: 'x1'"),
    (REAL_ITEMS + REAL_ITEMS.splitlines(keepends=True)[0], 4, "duplicate item_id 1"),
])
def test_malformed_items_name_file_and_line(tmp_path, items, line, reason):
    directory = _write(tmp_path / "ml", REAL_RATINGS, items)
    with pytest.raises(movielens.MovieLensFormatError) as error:
        movielens.load_movielens(str(directory))
    assert str(error.value) == f"{directory / movielens.ITEMS_FILE}:{line}: {reason}"


def test_time_split_holds_out_each_users_latest_rows(tmp_path):
    interactions, _ = movielens.load_movielens(str(_generate(tmp_path, "data", seed=5)))
    train, evaluation = movielens.time_split(interactions, eval_per_user=2)
    assert sorted(train + evaluation) == sorted(interactions)
    train_by_user = collections.defaultdict(list)
    for row in train:
        train_by_user[row.user_id].append(row)
    eval_by_user = collections.defaultdict(list)
    for row in evaluation:
        eval_by_user[row.user_id].append(row)
    assert set(eval_by_user) == set(train_by_user)
    for user, held_out in eval_by_user.items():
        assert len(held_out) == 2
        latest_train = max((r.timestamp, r.item_id) for r in train_by_user[user])
        assert min((r.timestamp, r.item_id) for r in held_out) > latest_train


def test_time_split_breaks_ties_by_item_and_keeps_small_users_in_train():
    def row(user, item, timestamp):
        return movielens.Interaction(user, item, 4, timestamp, ("Drama",))

    rows = [row(1, 9, 100), row(1, 3, 200), row(1, 7, 200), row(1, 5, 200),
            row(2, 1, 100), row(2, 2, 300),
            row(3, 4, 100), row(3, 8, 200), row(3, 6, 300)]
    train, evaluation = movielens.time_split(rows, eval_per_user=2)
    assert evaluation == [row(1, 7, 200), row(1, 5, 200), row(3, 8, 200), row(3, 6, 300)]
    assert train == [row(1, 9, 100), row(1, 3, 200), row(2, 1, 100), row(2, 2, 300),
                     row(3, 4, 100)]
    # A user who has fewer rows than eval_per_user + 1 still keeps one in train.
    _, evaluation = movielens.time_split(rows, eval_per_user=5)
    assert [r.item_id for r in evaluation if r.user_id == 3] == [8, 6]


def test_shipped_dataset_is_what_the_default_generator_writes(tmp_path):
    regenerated = _generate(tmp_path, "default", seed=0, config=gen.GeneratorConfig())
    for name in (movielens.RATINGS_FILE, movielens.ITEMS_FILE, gen.USERS_FILE):
        assert (SHIPPED_DIR / name).read_bytes() == (regenerated / name).read_bytes(), name
    # Factors are compared by value: another CPU's BLAS kernels may round the
    # last bit differently, which no sampled id or rating is sensitive to.
    with np.load(SHIPPED_DIR / gen.ORACLE_FILE) as shipped, \
            np.load(regenerated / gen.ORACLE_FILE) as fresh:
        assert shipped.files == fresh.files
        for name in shipped.files:
            np.testing.assert_allclose(shipped[name], fresh[name], rtol=1e-12, err_msg=name)


def test_shipped_reference_results_are_current_and_leave_room_for_a_model():
    shipped = json.loads(pathlib.Path(reference_recall.DEFAULT_RESULTS).read_text())
    assert reference_recall.compute(str(SHIPPED_DIR)) == shipped
    recall = shipped["recall_at_10"]
    assert recall["oracle"] >= 3 * recall["most_popular"]
