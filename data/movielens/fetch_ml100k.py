"""Fetches MovieLens-100k and writes it in GroupLens' own file format.

Why this route: GroupLens' licence forbids redistributing MovieLens, so the
repository cannot ship it, and a build machine often reaches a Python package
mirror but not files.grouplens.org. RecBole's wheel on PyPI (recbole==1.2.1)
carries ml-100k as RecBole "atomic files" under
recbole/dataset_example/ml-100k/. This script downloads that wheel with pip
(RecBole is neither installed nor imported), reads the three files out of the
zip and writes u.data, u.item and u.user as GroupLens lays them out, which is
what modules/two_tower/movielens.py reads.

What the atomic files changed and the conversion undoes or accepts:

* Columns are named by a typed header (``rating:float``); they are found by
  name, so a reordered file converts the same. Ratings and timestamps may be
  written as ``3.0``; anything that is not a whole number is refused.
* RecBole cut the last ``(...)`` off each title into ``release_year``; it is
  put back, so titles read ``Toy Story (1995)`` again (and item 1412 ends in
  ``(1995) (V)`` as in GroupLens' file). Item 267, whose title GroupLens left
  as ``unknown``, reads ``unkonwn`` in both columns there and becomes
  ``unknown`` with no date again.
* Only the year survives of the release date, so it is written as
  ``01-Jan-<year of the title>`` (GroupLens has the exact day for some films);
  the video release date and IMDb URL columns stay empty. Nothing in the
  pipeline reads them.
* Genres are space-separated names; they become the 19 flags in
  ``movielens.GENRES`` order, an item without any gets ``unknown``.
* Text is UTF-8 in the wheel and latin-1 in u.item, as GroupLens has it.

Checks before anything is written: 100,000 ratings of 1-5, 943 users and
1,682 items, no id twice, every rating's user and item present. The files are
written into a hidden sibling directory, read back with
``movielens.load_movielens`` and only then renamed to the output directory,
so a failed run leaves no half-written data behind.

Exit status: 0 written; 1 the pip download failed (the message gives the
command to run by hand, then pass ``--wheel``); 2 bad usage or input: the
output exists and ``--force`` was not given, the wheel is missing or not a
RecBole wheel, or the data fail a check (the message names the file and line).

Usage (from the repository root):
    python -m data.movielens.fetch_ml100k                  # writes data/movielens/ml-100k/
    python -m data.movielens.fetch_ml100k --output-dir /tmp/ml-100k \
        --wheel recbole-1.2.1-py3-none-any.whl       # offline, a wheel fetched earlier
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from typing import Iterator, Mapping, NamedTuple, Sequence

from data.interactions.generate_interactions import USERS_FILE
from modules.two_tower import movielens

RECBOLE_REQUIREMENT = "recbole==1.2.1"
_MEMBER_DIR = "recbole/dataset_example/ml-100k/"
INTER_MEMBER = _MEMBER_DIR + "ml-100k.inter"
ITEM_MEMBER = _MEMBER_DIR + "ml-100k.item"
USER_MEMBER = _MEMBER_DIR + "ml-100k.user"
_MEMBERS = (INTER_MEMBER, ITEM_MEMBER, USER_MEMBER)
DEFAULT_OUTPUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ml-100k")

EXIT_OK = 0
EXIT_DOWNLOAD_FAILED = 1
EXIT_BAD_INPUT = 2

# RecBole's placeholder (sic) for item 267's title and year.
_RECBOLE_UNKNOWN = "unkonwn"
_GENRE_COLUMN = {name: column for column, name in enumerate(movielens.GENRES)}
_YEAR_IN_TITLE = re.compile(r"\(([0-9]{4})\)")
# A whole number as RecBole may write it: "3", "3.0", "881250949.".
_WHOLE_NUMBER = re.compile(r"([0-9]+)(?:\.0*)?")


class Counts(NamedTuple):
    ratings: int
    users: int
    items: int


ML100K_COUNTS = Counts(ratings=100_000, users=943, items=1_682)


class ConversionError(ValueError):
    """Source data fail a check; the message starts with the file (and line)."""

    def __init__(self, source: str, line_number: int | None, reason: str):
        where = source if line_number is None else f"{source}:{line_number}"
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line_number = line_number
        self.reason = reason


class DownloadError(RuntimeError):
    """pip could not download the RecBole wheel."""


class Rating(NamedTuple):
    user_id: int
    item_id: int
    rating: int
    timestamp: int


class ItemRow(NamedTuple):
    item_id: int
    title: str
    release_date: str
    genre_flags: tuple[int, ...]


class UserRow(NamedTuple):
    user_id: int
    age: int
    gender: str
    occupation: str
    zip_code: str


def _atomic_rows(text: str, source: str,
                 columns: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """Yields (1-based line number, values of ``columns``) for each data row.

    Columns are matched on the name before the type in the header
    (``rating:float`` is ``rating``), never on position.
    """
    lines = text.split("\n")
    header = lines[0].rstrip("\r").split("\t")
    names = [field.split(":", 1)[0] for field in header]
    for name in columns:
        if names.count(name) != 1:
            raise ConversionError(
                source, 1, f"header needs exactly one {name!r} column, has {names}")
    positions = [names.index(name) for name in columns]
    for line_number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ConversionError(
                source, line_number,
                f"expected {len(header)} tab-separated fields, got {len(fields)}")
        yield line_number, [fields[p] for p in positions]


def _whole_number(source: str, line_number: int, name: str, text: str) -> int:
    match = _WHOLE_NUMBER.fullmatch(text)
    if match is None:
        raise ConversionError(
            source, line_number, f"{name} must be a non-negative whole number, got {text!r}")
    return int(match.group(1))


def _text_field(source: str, line_number: int, name: str, text: str) -> str:
    """A non-empty '|'-free latin-1 value, since that is all u.item/u.user can hold."""
    if not text or "|" in text:
        raise ConversionError(
            source, line_number, f"{name} must be non-empty and free of '|', got {text!r}")
    try:
        text.encode(movielens.ENCODING)
    except UnicodeEncodeError:
        raise ConversionError(
            source, line_number,
            f"{name} has characters latin-1 cannot encode: {text!r}") from None
    return text


def _check_unique(ids: Sequence[int], source: str, what: str) -> None:
    seen = set()
    for row, value in enumerate(ids, start=1):
        if value in seen:
            raise ConversionError(source, None, f"{what} {value} appears twice (row {row})")
        seen.add(value)


def convert_ratings(text: str, source: str = INTER_MEMBER) -> list[Rating]:
    """Rows of an atomic .inter file, in file order, as whole-number ratings."""
    ratings = []
    for line_number, values in _atomic_rows(
            text, source, ("user_id", "item_id", "rating", "timestamp")):
        row = Rating(*(_whole_number(source, line_number, name, value)
                       for name, value in zip(Rating._fields, values)))
        if not 1 <= row.rating <= 5:
            raise ConversionError(source, line_number, f"rating must be 1-5, got {row.rating}")
        ratings.append(row)
    return ratings


def convert_items(text: str, source: str = ITEM_MEMBER) -> list[ItemRow]:
    """Rows of an atomic .item file as u.item rows (see the module docstring)."""
    items = []
    for line_number, (item_id, title, year, classes) in _atomic_rows(
            text, source, ("item_id", "movie_title", "release_year", "class")):
        if title == year == _RECBOLE_UNKNOWN:
            title, year = "unknown", ""
        if year:
            title = f"{title} ({year})"
        title = _text_field(source, line_number, "movie_title", title)
        years = _YEAR_IN_TITLE.findall(title)
        genres = classes.split() or ["unknown"]
        unknown = [name for name in genres if name not in _GENRE_COLUMN]
        if unknown:
            raise ConversionError(
                source, line_number,
                f"unknown genre(s) {unknown}; known: {', '.join(movielens.GENRES)}")
        flags = [0] * len(movielens.GENRES)
        for name in genres:
            flags[_GENRE_COLUMN[name]] = 1
        items.append(ItemRow(_whole_number(source, line_number, "item_id", item_id), title,
                             f"01-Jan-{years[-1]}" if years else "", tuple(flags)))
    _check_unique([row.item_id for row in items], source, "item_id")
    return items


def convert_users(text: str, source: str = USER_MEMBER) -> list[UserRow]:
    """Rows of an atomic .user file as u.user rows."""
    users = []
    for line_number, (user_id, age, gender, occupation, zip_code) in _atomic_rows(
            text, source, UserRow._fields):
        if gender not in ("M", "F"):
            raise ConversionError(source, line_number, f"gender must be M or F, got {gender!r}")
        users.append(UserRow(
            _whole_number(source, line_number, "user_id", user_id),
            _whole_number(source, line_number, "age", age),
            gender,
            _text_field(source, line_number, "occupation", occupation),
            _text_field(source, line_number, "zip_code", zip_code)))
    _check_unique([row.user_id for row in users], source, "user_id")
    return users


def check_dataset(ratings: Sequence[Rating], items: Sequence[ItemRow],
                  users: Sequence[UserRow], expected: Counts) -> None:
    """Raises ConversionError, naming the wheel member at fault, unless the
    counts are ``expected`` and every rating's user and item exist."""
    for source, what, found, wanted in (
            (INTER_MEMBER, "ratings", len(ratings), expected.ratings),
            (USER_MEMBER, "users", len(users), expected.users),
            (ITEM_MEMBER, "items", len(items), expected.items)):
        if found != wanted:
            raise ConversionError(source, None, f"has {found} {what}, expected {wanted}")
    user_ids = {row.user_id for row in users}
    item_ids = {row.item_id for row in items}
    for row_number, row in enumerate(ratings, start=1):
        if row.user_id not in user_ids:
            raise ConversionError(
                INTER_MEMBER, None,
                f"rating row {row_number}: user_id {row.user_id} is not in {USER_MEMBER}")
        if row.item_id not in item_ids:
            raise ConversionError(
                INTER_MEMBER, None,
                f"rating row {row_number}: item_id {row.item_id} is not in {ITEM_MEMBER}")


def format_files(ratings: Sequence[Rating], items: Sequence[ItemRow],
                 users: Sequence[UserRow]) -> dict[str, bytes]:
    """u.data, u.item and u.user contents in GroupLens' layout and encoding."""
    data = "".join(f"{r.user_id}\t{r.item_id}\t{r.rating}\t{r.timestamp}\n" for r in ratings)
    # item|title|release date|video release date|IMDb URL|19 genre flags
    item = "".join("|".join([str(row.item_id), row.title, row.release_date, "", ""]
                            + [str(flag) for flag in row.genre_flags]) + "\n"
                   for row in items)
    user = "".join("|".join(str(value) for value in row) + "\n" for row in users)
    return {
        movielens.RATINGS_FILE: data.encode("ascii"),
        movielens.ITEMS_FILE: item.encode(movielens.ENCODING),
        USERS_FILE: user.encode(movielens.ENCODING),
    }


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConversionError(source, None, f"is not UTF-8: {error}") from None


def convert(members: Mapping[str, bytes], expected: Counts = ML100K_COUNTS) -> dict[str, bytes]:
    """The three GroupLens files from the wheel's atomic files (keyed by
    their paths in the wheel), after every check."""
    ratings = convert_ratings(_decode(members[INTER_MEMBER], INTER_MEMBER))
    items = convert_items(_decode(members[ITEM_MEMBER], ITEM_MEMBER))
    users = convert_users(_decode(members[USER_MEMBER], USER_MEMBER))
    check_dataset(ratings, items, users, expected)
    return format_files(ratings, items, users)


def read_wheel(path: str) -> dict[str, bytes]:
    """The atomic files inside the RecBole wheel at ``path``."""
    try:
        with zipfile.ZipFile(path) as wheel:
            missing = [name for name in _MEMBERS if name not in wheel.namelist()]
            if missing:
                raise ConversionError(
                    path, None, f"lacks {', '.join(missing)}; pass the {RECBOLE_REQUIREMENT} wheel")
            return {name: wheel.read(name) for name in _MEMBERS}
    except (OSError, zipfile.BadZipFile) as error:
        raise ConversionError(path, None, f"cannot read the wheel: {error}") from None


def download_wheel(directory: str) -> str:
    """Downloads the RecBole wheel into ``directory`` and returns its path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               RECBOLE_REQUIREMENT, "-d", directory]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = glob.glob(os.path.join(directory, "recbole-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        by_hand = shlex.join(command[:-1] + ["/tmp/recbole"])
        raise DownloadError(
            f"'{shlex.join(command)}' failed (exit {result.returncode}, "
            f"{len(wheels)} wheel(s)):\n{result.stderr.strip()[-2000:]}\n"
            f"Download it by hand with\n  {by_hand}\nand rerun with "
            f"--wheel /tmp/recbole/recbole-1.2.1-py3-none-any.whl")
    return wheels[0]


def write_atomically(files: Mapping[str, bytes], output_dir: str,
                     expected_ratings: int) -> None:
    """Writes ``files`` to a hidden sibling of ``output_dir``, checks that
    movielens.load_movielens reads ``expected_ratings`` rows from it, then
    renames it into place (replacing an existing ``output_dir``)."""
    output_dir = os.path.abspath(output_dir)
    parent, name = os.path.split(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{name}.partial-{uuid.uuid4().hex[:8]}")
    os.mkdir(staging)
    replaced = None
    try:
        for file_name, content in files.items():
            with open(os.path.join(staging, file_name), "wb") as handle:
                handle.write(content)
        interactions, _ = movielens.load_movielens(staging)
        if len(interactions) != expected_ratings:
            raise ConversionError(
                movielens.RATINGS_FILE, None,
                f"reads back as {len(interactions)} interactions, expected {expected_ratings}")
        if os.path.exists(output_dir):
            os.rename(output_dir, f"{staging}-replaced")
            replaced = f"{staging}-replaced"
        os.rename(staging, output_dir)
    except BaseException:
        if replaced is not None and not os.path.exists(output_dir):
            os.rename(replaced, output_dir)
            replaced = None
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)


def main(argv: list[str] | None = None, expected: Counts = ML100K_COUNTS) -> int:
    """Runs the command line; ``expected`` is a parameter (not an option) so
    that tests can convert a small fake wheel while the command always
    insists on the real counts."""
    parser = argparse.ArgumentParser(prog="fetch_ml100k",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR,
                        help="where u.data, u.item and u.user go (default: %(default)s)")
    parser.add_argument("--wheel", help="use this already downloaded recbole-1.2.1 wheel "
                                        "instead of running pip download")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output directory")
    args = parser.parse_args(argv)
    if os.path.exists(args.output_dir) and not args.force:
        print(f"{parser.prog}: {args.output_dir} already exists; pass --force to replace it",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.wheel:
            members = read_wheel(args.wheel)
        else:
            with tempfile.TemporaryDirectory(prefix="recbole-wheel-") as download_dir:
                members = read_wheel(download_wheel(download_dir))
        write_atomically(convert(members, expected), args.output_dir, expected.ratings)
    except DownloadError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return EXIT_DOWNLOAD_FAILED
    except ValueError as error:  # ConversionError, MovieLensFormatError
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {expected.ratings} ratings, {expected.users} users and "
          f"{expected.items} items to {args.output_dir}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
