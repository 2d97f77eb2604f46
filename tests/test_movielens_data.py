"""Tests for real MovieLens-100k: the RecBole-wheel conversion (fetch_ml100k)
and the recall anchors computed on it (anchors)."""
import collections
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # data/ is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from data.interactions import generate_interactions as gen  # noqa: E402
from data.movielens import anchors  # noqa: E402
from data.movielens import fetch_ml100k as fetch  # noqa: E402
from modules.two_tower import movielens  # noqa: E402

SHIPPED_DATA_DIR = REPO_ROOT / "data" / "movielens" / "ml-100k"

# Atomic files as in the wheel, with the quirks of the real ones: typed
# headers, item 267's "unkonwn", item 1412's "V" year, a UTF-8 accent.
INTER = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
         "196\t242\t3\t881250949\n"
         "22\t543\t1.0\t878887116.0\n"
         "196\t267\t5\t881251955\n")
ITEM = ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "242\tKolya\t1996\tComedy\n"
        "267\tunkonwn\tunkonwn\tunknown\n"
        "543\tMisérables, Les\t1995\tDrama Musical\n"
        "1412\tLand Before Time III: The Time of the Great Giving (1995)\tV\t"
        "Animation Children's\n")
USER = ("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "22\t25\tM\twriter\t40206\n"
        "196\t49\tM\twriter\t55105\n")
SMALL_COUNTS = fetch.Counts(ratings=3, users=2, items=4)


def _flags(*genres):
    return tuple(int(name in genres) for name in movielens.GENRES)


def _wheel(path: pathlib.Path, inter: str = INTER, item: str = ITEM,
           user: str = USER) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("recbole/__init__.py", "")
        for member, text in ((fetch.INTER_MEMBER, inter), (fetch.ITEM_MEMBER, item),
                             (fetch.USER_MEMBER, user)):
            wheel.writestr(member, text.encode("utf-8"))
    return path


def _leftovers(parent: pathlib.Path) -> list:
    """Hidden staging directories a run may have left next to its output."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --- conversion functions -------------------------------------------------

def test_ratings_are_found_by_header_name_and_made_integers():
    reordered = ("timestamp:float\trating:float\tuser_id:token\textra:token\titem_id:token\n"
                 "881250949.0\t3.0\t196\tx\t242\n\n")
    assert fetch.convert_ratings(reordered) == [fetch.Rating(196, 242, 3, 881250949)]
    assert fetch.convert_ratings(INTER)[1] == fetch.Rating(22, 543, 1, 878887116)


@pytest.mark.parametrize("text, line, reason", [
    (INTER + "1\t2\t3.5\t881250949\n", 5,
     "rating must be a non-negative whole number, got '3.5'"),
    (INTER.replace("881251955", "8.8e8"), 4,
     "timestamp must be a non-negative whole number, got '8.8e8'"),
    (INTER + "1\t2\t6\t881250949\n", 5, "rating must be 1-5, got 6"),
    (INTER + "1\t2\t3\n", 5, "expected 4 tab-separated fields, got 3"),
    (INTER.replace("rating:float", "score:float"), 1,
     "header needs exactly one 'rating' column, has "
     "['user_id', 'item_id', 'score', 'timestamp']"),
])
def test_bad_ratings_are_refused_naming_file_and_line(text, line, reason):
    with pytest.raises(fetch.ConversionError) as error:
        fetch.convert_ratings(text, source="ml-100k.inter")
    assert str(error.value) == f"ml-100k.inter:{line}: {reason}"
    assert error.value.line_number == line


def test_items_get_titles_dates_and_genre_flags_back():
    assert fetch.convert_items(ITEM) == [
        fetch.ItemRow(242, "Kolya (1996)", "01-Jan-1996", _flags("Comedy")),
        fetch.ItemRow(267, "unknown", "", _flags("unknown")),
        fetch.ItemRow(543, "Misérables, Les (1995)", "01-Jan-1995", _flags("Drama", "Musical")),
        fetch.ItemRow(1412, "Land Before Time III: The Time of the Great Giving (1995) (V)",
                      "01-Jan-1995", _flags("Animation", "Children's")),
    ]


def test_items_without_genres_or_year_and_in_another_column_order():
    text = ("class:token_seq\trelease_year:token\titem_id:token\tmovie_title:token_seq\n"
            "\t\t7\tNo Year\n"
            "Film-Noir Sci-Fi\t1982\t8\tBlade Runner\n")
    assert fetch.convert_items(text) == [
        fetch.ItemRow(7, "No Year", "", _flags("unknown")),
        fetch.ItemRow(8, "Blade Runner (1982)", "01-Jan-1982", _flags("Film-Noir", "Sci-Fi")),
    ]


@pytest.mark.parametrize("row, reason", [
    ("9\tNoir Film\t1950\tNoir Drama",
     "unknown genre(s) ['Noir']; known: " + ", ".join(movielens.GENRES)),
    ("9\tŌkami\t1950\tDrama", "movie_title has characters latin-1 cannot encode: 'Ōkami (1950)'"),
    ("9\tA|B\t1950\tDrama", "movie_title must be non-empty and free of '|', got 'A|B (1950)'"),
])
def test_bad_items_are_refused_naming_file_and_line(row, reason):
    with pytest.raises(fetch.ConversionError) as error:
        fetch.convert_items(ITEM + row + "\n", source="ml-100k.item")
    assert str(error.value) == f"ml-100k.item:6: {reason}"


def test_duplicate_ids_are_refused():
    with pytest.raises(fetch.ConversionError, match=r"^ml-100k.item: item_id 242 appears twice"):
        fetch.convert_items(ITEM + "242\tKolya\t1996\tComedy\n", source="ml-100k.item")
    with pytest.raises(fetch.ConversionError, match=r"^ml-100k.user: user_id 22 appears twice"):
        fetch.convert_users(USER + "22\t30\tF\tother\t12345\n", source="ml-100k.user")


def test_users_keep_grouplens_fields():
    reordered = ("zip_code:token\tgender:token\tuser_id:token\tage:token\toccupation:token\n"
                 "T8H1N\tM\t74\t39\tscientist\n")
    assert fetch.convert_users(reordered) == [fetch.UserRow(74, 39, "M", "scientist", "T8H1N")]
    with pytest.raises(fetch.ConversionError) as error:
        fetch.convert_users(USER.replace("\tM\twriter\t40206", "\tX\twriter\t40206"),
                            source="ml-100k.user")
    assert str(error.value) == "ml-100k.user:2: gender must be M or F, got 'X'"


@pytest.mark.parametrize("counts, message", [
    (fetch.ML100K_COUNTS, f"{fetch.INTER_MEMBER}: has 3 ratings, expected 100000"),
    (SMALL_COUNTS._replace(users=3), f"{fetch.USER_MEMBER}: has 2 users, expected 3"),
    (SMALL_COUNTS._replace(items=5), f"{fetch.ITEM_MEMBER}: has 4 items, expected 5"),
])
def test_count_check_names_the_file(counts, message):
    ratings, items, users = (fetch.convert_ratings(INTER), fetch.convert_items(ITEM),
                             fetch.convert_users(USER))
    with pytest.raises(fetch.ConversionError) as error:
        fetch.check_dataset(ratings, items, users, counts)
    assert str(error.value) == message


def test_ratings_of_unknown_users_or_items_are_refused():
    items, users = fetch.convert_items(ITEM), fetch.convert_users(USER)
    for extra, missing in (("7\t242\t3\t1", f"user_id 7 is not in {fetch.USER_MEMBER}"),
                           ("22\t9\t3\t1", f"item_id 9 is not in {fetch.ITEM_MEMBER}")):
        ratings = fetch.convert_ratings(INTER + extra + "\n")
        with pytest.raises(fetch.ConversionError) as error:
            fetch.check_dataset(ratings, items, users, SMALL_COUNTS._replace(ratings=4))
        assert str(error.value) == f"{fetch.INTER_MEMBER}: rating row 4: {missing}"


def test_written_files_use_grouplens_layout_and_latin1(tmp_path):
    files = fetch.convert({fetch.INTER_MEMBER: INTER.encode(), fetch.ITEM_MEMBER: ITEM.encode(),
                           fetch.USER_MEMBER: USER.encode()}, SMALL_COUNTS)
    assert files[movielens.RATINGS_FILE] == (
        b"196\t242\t3\t881250949\n22\t543\t1\t878887116\n196\t267\t5\t881251955\n")
    assert files[movielens.ITEMS_FILE].splitlines()[2] == (
        b"543|Mis\xe9rables, Les (1995)|01-Jan-1995|||0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0")
    assert files[gen.USERS_FILE] == b"22|25|M|writer|40206\n196|49|M|writer|55105\n"
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    interactions, items = movielens.load_movielens(str(tmp_path))
    assert interactions[0][:5] == (196, 242, 3, 881250949, ("Comedy",))
    assert items[267] == movielens.Item(267, "unknown", "", ("unknown",))


# --- command line ---------------------------------------------------------

def test_cli_converts_a_wheel_and_refuses_to_overwrite(tmp_path, capsys):
    wheel = _wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl")
    out = tmp_path / "data" / "ml-100k"
    argv = ["--output-dir", str(out), "--wheel", str(wheel)]
    assert fetch.main(argv, expected=SMALL_COUNTS) == fetch.EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["u.data", "u.item", "u.user"]
    assert len(movielens.load_movielens(str(out))[0]) == 3

    (out / "marker").write_text("old")
    assert fetch.main(argv, expected=SMALL_COUNTS) == fetch.EXIT_BAD_INPUT
    assert "already exists; pass --force" in capsys.readouterr().err
    assert (out / "marker").exists()
    assert fetch.main(argv + ["--force"], expected=SMALL_COUNTS) == fetch.EXIT_OK
    assert not (out / "marker").exists()
    assert _leftovers(out.parent) == []


def test_cli_checks_the_real_counts_by_default(tmp_path, capsys):
    wheel = _wheel(tmp_path / "small.whl")
    out = tmp_path / "ml-100k"
    assert fetch.main(["--output-dir", str(out), "--wheel", str(wheel)]) == fetch.EXIT_BAD_INPUT
    assert f"{fetch.INTER_MEMBER}: has 3 ratings, expected 100000" in capsys.readouterr().err
    assert not out.exists()


def test_failed_conversion_writes_nothing_and_keeps_old_output(tmp_path, capsys):
    wheel = _wheel(tmp_path / "bad.whl", inter=INTER + "196\t242\t2.5\t881250950\n")
    out = tmp_path / "data" / "ml-100k"
    argv = ["--output-dir", str(out), "--wheel", str(wheel)]
    assert fetch.main(argv, expected=SMALL_COUNTS) == fetch.EXIT_BAD_INPUT
    assert (f"{fetch.INTER_MEMBER}:5: rating must be a non-negative whole number, got '2.5'"
            in capsys.readouterr().err)
    assert not out.exists()

    out.mkdir(parents=True)
    (out / "u.data").write_text("old")
    assert fetch.main(argv + ["--force"], expected=SMALL_COUNTS) == fetch.EXIT_BAD_INPUT
    assert (out / "u.data").read_text() == "old"
    assert _leftovers(out.parent) == []


def test_failed_read_back_removes_the_staging_directory(tmp_path):
    files = fetch.convert({fetch.INTER_MEMBER: INTER.encode(), fetch.ITEM_MEMBER: ITEM.encode(),
                           fetch.USER_MEMBER: USER.encode()}, SMALL_COUNTS)
    out = tmp_path / "ml-100k"
    with pytest.raises(fetch.ConversionError, match="reads back as 3 interactions, expected 4"):
        fetch.write_atomically(files, str(out), expected_ratings=4)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make_wheel, reason", [
    (lambda path: path, "cannot read the wheel"),
    (lambda path: path.write_bytes(b"not a zip") and path, "cannot read the wheel"),
    (lambda path: zipfile.ZipFile(path, "w").close() or path,
     f"lacks {fetch.INTER_MEMBER}, {fetch.ITEM_MEMBER}, {fetch.USER_MEMBER}; "
     "pass the recbole==1.2.1 wheel"),
])
def test_unusable_wheel_is_bad_input(tmp_path, capsys, make_wheel, reason):
    wheel = make_wheel(tmp_path / "recbole.whl")
    out = tmp_path / "ml-100k"
    assert fetch.main(["--output-dir", str(out), "--wheel", str(wheel)]) == fetch.EXIT_BAD_INPUT
    assert f"{wheel}: {reason}" in capsys.readouterr().err
    assert not out.exists()


def test_download_failure_exits_1_with_the_command_to_run_by_hand(tmp_path, capsys, monkeypatch):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'ERROR: no mirror' >&2\nexit 1\n")
    python.chmod(0o755)
    monkeypatch.setattr(fetch.sys, "executable", str(python))
    out = tmp_path / "ml-100k"
    assert fetch.main(["--output-dir", str(out)]) == fetch.EXIT_DOWNLOAD_FAILED
    err = capsys.readouterr().err
    assert "ERROR: no mirror" in err
    assert (f"{python} -m pip download --no-deps --only-binary=:all: recbole==1.2.1 "
            "-d /tmp/recbole") in err
    assert "--wheel /tmp/recbole/recbole-1.2.1-py3-none-any.whl" in err
    assert not out.exists()


# --- the real dataset -----------------------------------------------------

@pytest.fixture(scope="module")
def real_ml100k(tmp_path_factory) -> pathlib.Path:
    """MovieLens-100k freshly fetched by the real command (pip download, ~5 s);
    a download failure fails the tests that use it, with pip's reason."""
    out = tmp_path_factory.mktemp("real") / "ml-100k"
    result = subprocess.run(
        [sys.executable, "-m", "data.movielens.fetch_ml100k", "--output-dir", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def test_real_fetch_gives_movielens_100k(real_ml100k):
    interactions, items = movielens.load_movielens(str(real_ml100k))
    users = (real_ml100k / gen.USERS_FILE).read_text("latin-1").splitlines()
    assert (len(interactions), len(users), len(items)) == tuple(fetch.ML100K_COUNTS)
    assert len({row.user_id for row in interactions}) == 943
    # GroupLens' u.data, row 1, and items whose titles need care.
    assert interactions[0][:4] == (196, 242, 3, 881250949)
    assert items[1].title == "Toy Story (1995)"
    assert items[1].genres == ("Animation", "Children's", "Comedy")
    assert items[267] == movielens.Item(267, "unknown", "", ("unknown",))
    assert items[1412].title == "Land Before Time III: The Time of the Great Giving (1995) (V)"
    assert b"|Mis\xe9rables, Les (1995)|" in (real_ml100k / movielens.ITEMS_FILE).read_bytes()
    assert collections.Counter(int(r.rating) for r in interactions) == {
        4: 34174, 3: 27145, 5: 21201, 2: 11370, 1: 6110}
    # The synthetic u.user draws occupations with exactly these shares.
    occupations = collections.Counter(line.split("|")[3] for line in users)
    assert occupations == gen._OCCUPATION_FREQUENCY
    if SHIPPED_DATA_DIR.exists():  # what `make movielens` wrote is the same
        for name in (movielens.RATINGS_FILE, movielens.ITEMS_FILE, gen.USERS_FILE):
            assert (SHIPPED_DATA_DIR / name).read_bytes() == (real_ml100k / name).read_bytes()


def test_committed_anchor_results_are_current(real_ml100k):
    shipped = json.loads(pathlib.Path(anchors.DEFAULT_OUTPUTS["eval"]).read_text())
    fresh = anchors.compute(str(real_ml100k), "eval")
    assert {**fresh, "data_dir": shipped["data_dir"]} == shipped
    assert shipped["data_dir"] == os.path.join("data", "movielens", "ml-100k")
    recall = fresh["recall_at_10"]
    assert recall["most_popular"] < recall["item_knn"] < recall["ease"] < recall["ease_recency"]


# --- anchors on toy data --------------------------------------------------

def _row(user, item, timestamp=0):
    return movielens.Interaction(user, item, 4, timestamp, ("Drama",))


def test_item_knn_similarity_is_cosine_of_item_columns():
    matrix = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 0]], dtype=float)
    similarity = anchors.item_knn_similarity(matrix)
    # Item columns: (1,1,1,0), (1,1,0,0), (0,0,1,1); item 4 has no users.
    expected = np.array([[1, 2 / np.sqrt(6), 1 / np.sqrt(6), 0],
                         [2 / np.sqrt(6), 1, 0, 0],
                         [1 / np.sqrt(6), 0, 1, 0],
                         [0, 0, 0, 0]])
    np.testing.assert_allclose(similarity, expected)


def test_ease_weights_match_the_two_item_closed_form():
    # Two items: B[i, j] = X_i.X_j / (X_i.X_i + lambda), a ridge regression of
    # item j on item i. Here X_1.X_1 = 3, X_2.X_2 = 2, X_1.X_2 = 1.
    matrix = np.array([[1, 1], [1, 0], [1, 0], [0, 1]], dtype=float)
    np.testing.assert_allclose(anchors.ease_weights(matrix, lam=1.0),
                               [[0, 1 / 4], [1 / 3, 0]])


def test_recency_profile_weights_the_last_items_of_each_user():
    train = [_row(1, 10, 100), _row(1, 11, 300), _row(1, 12, 300), _row(1, 13, 50),
             _row(2, 10, 7)]
    item_ids = np.array([10, 11, 12, 13])
    profiles = anchors.recency_profiles(train, {1: 0, 2: 1}, item_ids, decay=0.5, window=3)
    # User 1's order, latest first: 12 (tie at 300 broken by id), 11, 10; 13 is cut.
    np.testing.assert_allclose(profiles, [[0.25, 0.5, 1.0, 0.0], [1.0, 0, 0, 0]])


def test_anchors_on_a_toy_log_where_co_occurrence_beats_popularity():
    # Items 1+2 and 3+4 come in pairs; 5 is everybody's. Users 5 and 6 have
    # one item of a pair and 5: popularity (5, then 1 and 3 with 3 users each)
    # recommends the wrong pair, every co-occurrence model completes the pair.
    train = [_row(u, i) for u, items in {1: (1, 2, 5), 2: (1, 2, 5), 3: (3, 4, 5),
                                         4: (3, 4, 5), 5: (1, 5), 6: (3, 5)}.items()
             for i in items]
    held_out = [_row(5, 2), _row(6, 4)]
    recall = anchors.anchor_recalls(train, held_out, np.arange(1, 6), k=1, lam=1.0)
    assert recall == {"most_popular": 0.0, "item_knn": 1.0, "ease": 1.0, "ease_recency": 1.0}


def test_validation_protocol_splits_the_train_part_again():
    rows = [_row(1, item, timestamp) for item, timestamp in
            ((1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 60))]
    assert anchors.split(rows, "eval") == (rows[:4], rows[4:])
    assert anchors.split(rows, "validation") == (rows[:2], rows[2:4])
    with pytest.raises(ValueError, match="protocol must be one of"):
        anchors.split(rows, "test")
