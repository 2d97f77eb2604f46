"""Two-tower family: MovieLens ExampleGen, preprocessing through real tft_beam,
and the trained export's top-K, scoring and raw signatures."""
import collections
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from components.movielens_example_gen import executor as example_gen_executor
from data.interactions import generate_interactions
from modules.common import contract, vocabulary_remap, warmup
from modules.two_tower import features, model, movielens, preprocessing
from pipeline import configs
from tests import e2e_helpers, tft_testing

SCHEMA = configs.TWO_TOWER.schema_path()
SMALL = generate_interactions.GeneratorConfig(
    num_users=60, num_items=120, num_interactions=3000, min_per_user=20)

# Rows in the exact MovieLens-100k layout: a latin-1 accented title, an
# "unknown"-only item with empty dates, a user with too few rows to split.
ITEMS = (b"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story"
         b"|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
         b"267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
         b"1123|Mis\xe9rables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Mis"
         b"|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0\n")
RATINGS = (b"196\t1\t3\t881250949\n196\t267\t3\t881251955\n196\t1123\t5\t881250000\n"
           b"22\t1123\t1\t878887116\n")
USERS = b"196|49|M|writer|55105\n"  # user 22 is missing: unknown features


def _read_split(output_dir: str, split: str):
  files = glob.glob(os.path.join(output_dir, f"Split-{split}", "*.gz"))
  return [tf.train.Example.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _row(example: tf.train.Example):
  feature = example.features.feature
  return (feature[features.USER_ID].bytes_list.value[0].decode(),
          feature[features.ITEM_ID].bytes_list.value[0].decode(),
          tuple(v.decode() for v in feature[features.GENRES_KEY].bytes_list.value),
          feature[features.RATING].int64_list.value[0],
          feature[features.TIMESTAMP].int64_list.value[0])


def _context(example: tf.train.Example):
  """(title, year, user features, history, history length) of an example."""
  feature = example.features.feature

  def text(key):
    return feature[key].bytes_list.value[0].decode("utf-8")

  return (text(features.TITLE), feature[features.RELEASE_YEAR].int64_list.value[0],
          (feature[features.USER_AGE].int64_list.value[0], text(features.USER_GENDER),
           text(features.USER_OCCUPATION), text(features.USER_ZIP)),
          [v.decode() for v in feature[features.HISTORY].bytes_list.value],
          feature[features.HISTORY_LENGTH].int64_list.value[0])


def test_example_gen_reads_latin1_files_and_holds_out_each_users_latest(tmp_path):
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "u.item").write_bytes(ITEMS)
  (tmp_path / "data" / "u.data").write_bytes(RATINGS)
  (tmp_path / "data" / "u.user").write_bytes(USERS)
  artifact = e2e_helpers.run_movielens_example_gen(str(tmp_path / "data"), str(tmp_path / "out"))
  assert sorted(eval(artifact.split_names)) == ["eval", "train", "validation"]
  assert _read_split(str(tmp_path / "out"), "validation") == []  # too few rows to carve
  train = sorted(_row(e) for e in _read_split(str(tmp_path / "out"), "train"))
  evaluation = [_row(e) for e in _read_split(str(tmp_path / "out"), "eval")]
  # User 196's two latest (by timestamp, not file order) are held out;
  # user 22 has too few rows to split and stays in train.
  assert sorted(evaluation) == [
      ("196", "1", ("Animation", "Children's", "Comedy"), 3, 881250949),
      ("196", "267", ("unknown",), 3, 881251955)]
  assert train == [("196", "1123", ("Drama", "War"), 5, 881250000),
                   ("22", "1123", ("Drama", "War"), 1, 878887116)]
  # Both eval rows are predicted from the train timeline only (never from the
  # other eval row); the first train row has no history; u.user joins in.
  contexts = {_row(e)[1]: _context(e) for e in _read_split(str(tmp_path / "out"), "eval")}
  assert contexts["1"] == ("Toy Story (1995)", 1995, (49, "M", "writer", "55105"),
                           ["1123"], 1)
  assert contexts["267"][:2] == ("unknown", 0) and contexts["267"][3:] == (["1123"], 1)
  train_contexts = {_row(e)[0]: _context(e)
                    for e in _read_split(str(tmp_path / "out"), "train")}
  assert train_contexts["196"][3:] == ([], 0)
  assert train_contexts["22"][:3] == ("Misérables, Les (1995)", 1995,
                                      (0, "unknown", "unknown", "unknown"))


def test_example_gen_matches_the_reference_split_of_generated_data(tmp_path):
  generate_interactions.generate(SMALL, seed=3, output_dir=str(tmp_path / "data"))
  e2e_helpers.run_movielens_example_gen(str(tmp_path / "data"), str(tmp_path / "out"))
  interactions, _ = movielens.load_movielens(str(tmp_path / "data"))
  train, evaluation = movielens.time_split(interactions)
  # Validation is time_split applied again to train: each user's 2 latest
  # train rows (every generated user has enough of them).
  fit, validation = movielens.time_split(train)
  for split, rows in (("train", fit), ("validation", validation), ("eval", evaluation)):
    got = collections.Counter(_row(e)[:2] for e in _read_split(str(tmp_path / "out"), split))
    assert got == collections.Counter((str(r.user_id), str(r.item_id)) for r in rows)


def test_one_pass_over_the_source_gives_each_splits_records(tmp_path):
  data_dir = str(tmp_path / "data")
  generate_interactions.generate(SMALL, seed=3, output_dir=data_dir)
  source = configs.TWO_TOWER.example_source
  by_split = source.records_by_split(data_dir, ("train", "eval"))
  assert set(by_split) == {"train", "eval"}
  for split, records in by_split.items():
    parsed = [tf.train.Example.FromString(r) for r in records]
    assert parsed and parsed == [tf.train.Example.FromString(r)
                                 for r in source.records(data_dir, split)]


def test_example_gen_names_file_and_line_of_a_bad_row(tmp_path):
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "u.item").write_bytes(ITEMS)
  (tmp_path / "data" / "u.data").write_bytes(RATINGS.replace(b"22\t1123\t1", b"22\t1123\tx"))
  with pytest.raises(Exception, match=r"u\.data:4: rating is not a non-negative integer"):
    e2e_helpers.run_movielens_example_gen(str(tmp_path / "data"), str(tmp_path / "out"))


def _write_remote(remote: str, ratings: bytes) -> str:
  for name, content in (("u.item", ITEMS), ("u.data", ratings)):
    with tf.io.gfile.GFile(f"{remote}/{name}", "wb") as f:
      f.write(content)
  return remote


def test_example_gen_reads_remote_filesystems_and_names_their_bad_lines():
  good = _write_remote("ram://movielens-good", RATINGS)
  rows = [_row(e) for e in example_gen_executor.split_examples(good, "eval")]
  assert sorted(r[1] for r in rows) == ["1", "267"]
  bad = _write_remote("ram://movielens-bad", RATINGS + b"7\t9999\t3\t881250000\n")
  with pytest.raises(movielens.MovieLensFormatError,
                     match=r"^ram://movielens-bad/u\.data:5: item_id 9999 is not in u\.item"):
    list(example_gen_executor.split_examples(bad, "train"))


@pytest.fixture(scope="module")
def small_split(interaction_splits):
  """A small generated log's splits (tests/trained_models.py)."""
  return interaction_splits


def test_preprocessing_builds_frequency_vocabularies_and_multi_hot_genres(
    small_split, two_tower_trained):
  """On the train split the trained model's tft_beam run analysed and
  transformed (tests/trained_models.py)."""
  schema = tft_testing.load_schema(SCHEMA)
  instances = tft_testing.decode(small_split["train"], schema)
  work_dir, _ = two_tower_trained
  path = tft_testing.transformed_examples_path(work_dir, "train")
  tft_output = tft.TFTransformOutput(tft_testing.transform_graph_dir(work_dir))
  item_counts = collections.Counter(row[features.ITEM_ID][0] for row in instances)
  item_vocab = tft_output.vocabulary_by_name(features.ITEM_VOCAB)
  assert sorted(item_vocab) == sorted(item_counts)
  assert [item_counts[i] for i in item_vocab] == sorted(item_counts.values(), reverse=True)
  transformed = tft_testing.read_transformed(path, tft_output)
  genres = transformed[features.transformed_name(features.GENRES_KEY)]
  assert genres.shape == (len(instances), len(features.GENRE_NAMES))
  by_item = {row[features.ITEM_ID][0]: {g.decode() for g in row[features.GENRES_KEY]}
             for row in instances}
  for index, multi_hot in zip(transformed[features.transformed_name(features.ITEM_ID)], genres):
    expected = by_item[item_vocab[index]]
    assert {features.GENRE_NAMES[g] for g in np.flatnonzero(multi_hot)} == expected
  users = tft_output.transform_features_layer()(
      {features.USER_ID: tf.constant([[b"no-such-user"]])})
  num_users = len(tft_output.vocabulary_by_name(features.USER_VOCAB))
  assert users[features.transformed_name(features.USER_ID)].numpy().tolist() == [num_users]
  # History items map through the item vocabulary, most recent first, padded.
  history = transformed[features.transformed_name(features.HISTORY)]
  assert history.shape == (len(instances), movielens.HISTORY_LENGTH)
  for row, indices in zip(instances, history):
    items = [item_vocab[i] for i in indices if i != preprocessing.PAD]
    assert items == list(row[features.HISTORY])[:movielens.HISTORY_LENGTH]
  titles = transformed[features.transformed_name(features.TITLE)]
  assert titles.shape == (len(instances), preprocessing.TITLE_WORDS)
  words = tft_output.vocabulary_by_name(features.TITLE_VOCAB)
  assert b"synthetic" in words and b"1998" not in words  # the year is its own feature


def test_slice_features_bucket_history_lengths_and_item_popularity_ranks(
    small_split, two_tower_trained):
  """The transformed features TFMA slices on (never fed to the model), as
  the trained model's tft_beam run made them of its train split."""
  schema = tft_testing.load_schema(SCHEMA)
  instances = tft_testing.decode(small_split["train"], schema)
  work_dir, _ = two_tower_trained
  tft_output = tft.TFTransformOutput(tft_testing.transform_graph_dir(work_dir))
  transformed = tft_testing.read_transformed(
      tft_testing.transformed_examples_path(work_dir, "train"), tft_output)
  lengths = [row[features.HISTORY_LENGTH][0] for row in instances]
  expected = [features.HISTORY_BUCKET_NAMES[sum(n >= b for b in features.HISTORY_BUCKET_BOUNDARIES)]
              for n in lengths]
  assert [name.decode() for name in transformed[features.HISTORY_BUCKET_KEY]] == expected
  assert min(lengths) <= 5 < 50 <= max(lengths), "the slice should span every bucket"
  popularity = np.array([name.decode() for name in transformed[features.POPULARITY_BUCKET_KEY]])
  ranks = transformed[features.transformed_name(features.ITEM_ID)]
  items_seen = len(tft_output.vocabulary_by_name(features.ITEM_VOCAB))
  head, torso, tail = features.POPULARITY_BUCKET_NAMES
  expected = np.select([ranks < 0.2 * items_seen, ranks < 0.5 * items_seen], [head, torso], tail)
  np.testing.assert_array_equal(popularity, expected)
  assert {head, torso, tail} <= set(popularity)
  # The head's fifth of the items holds more than a fifth of the interactions.
  assert np.mean(popularity == head) > 0.2
  unseen = tft_output.transform_features_layer()({
      features.ITEM_ID: tf.constant([[b"no-such-item"]]),
      features.HISTORY_LENGTH: tf.constant([[0]], tf.int64)})
  assert unseen[features.POPULARITY_BUCKET_KEY].numpy().tolist() == [tail.encode()]


def test_preprocessing_buckets_years_and_ages():
  years = preprocessing.year_bucket(tf.constant([0, 1900, 1924, 1925, 1995, 2030], tf.int64))
  assert years.numpy().tolist() == [0, 1, 1, 2, 16, preprocessing.YEAR_BUCKETS - 1]
  words = preprocessing.title_words(tf.constant(["Misérables, Les (1995)", "unknown"]))
  # Non-ASCII letters split words (titles are latin-1 in u.item, rarely accented).
  assert tf.sparse.to_dense(words, "").numpy().tolist() == [
      [b"mis", b"rables", b"les"], [b"unknown", b"", b""]]


@pytest.fixture(scope="module")
def exported(two_tower_trained):
  """The session's two-tower model trained 40 steps on `small_split`
  (tests/trained_models.py, shared with the TFLite tests)."""
  _, export_dir = two_tower_trained
  return export_dir, tf.saved_model.load(export_dir).signatures


def _train_items_by_user(serialized):
  """{user: items}: what the model knows of each user (train and validation,
  every interaction before the eval cut) and never recommends back."""
  seen = collections.defaultdict(set)
  for record in serialized:
    user, item = _row(tf.train.Example.FromString(record))[:2]
    seen[user].add(item.encode())
  return seen


def test_signatures_and_warmup_requests(exported):
  export_dir, signatures = exported
  assert set(signatures) == {contract.SERVING_DEFAULT, features.HISTORY_SIGNATURE,
                             features.SCORING_SIGNATURE, contract.RAW_SIGNATURE,
                             contract.TRANSFORM_SIGNATURE}
  assert configs.TWO_TOWER.eval_signature == features.SCORING_SIGNATURE
  assert warmup.replay(export_dir) == 4


def test_top_k_excludes_train_items_and_unknown_users_get_popular_items(exported, small_split):
  _, signatures = exported
  seen = _train_items_by_user(small_split["train"] + small_split["validation"])
  users = sorted(seen)[:5]
  out = signatures[contract.SERVING_DEFAULT](
      user_id=tf.constant(users + ["no-such-user"]))
  item_ids, scores = out[features.TOP_ITEM_IDS].numpy(), out[features.TOP_SCORES].numpy()
  assert item_ids.shape == scores.shape == (6, model.TOP_K)
  assert np.all(np.diff(scores, axis=1) <= 0)
  for user, recommended in zip(users, item_ids):
    assert len(set(recommended)) == model.TOP_K
    assert not set(recommended) & seen[user]
  counts = collections.Counter(item for items in seen.values() for item in items)
  popular = sorted(counts, key=lambda item: -counts[item])
  threshold = counts[popular[model.TOP_K - 1]]
  assert {counts[item] for item in item_ids[-1]} <= {c for c in counts.values() if c >= threshold}
  assert counts[item_ids[-1][0]] == counts[popular[0]]


def _eval_example_of(user: str, small_split) -> tf.train.Example:
  """The user's eval example: its history and features are what the model
  stores for the user (the whole train timeline), as TFMA sends it."""
  for record in small_split["eval"]:
    example = tf.train.Example.FromString(record)
    if _row(example)[0] == user:
      return example
  raise AssertionError(f"user {user} has no eval example")


def _with_item(example: tf.train.Example, item: bytes) -> bytes:
  changed = tf.train.Example()
  changed.CopyFrom(example)
  changed.features.feature[features.ITEM_ID].bytes_list.value[:] = [item]
  return changed.SerializeToString()


def test_scoring_signature_ranks_agree_with_top_k(exported, small_split):
  _, signatures = exported
  seen = _train_items_by_user(small_split["train"] + small_split["validation"])
  user = sorted(seen)[0]
  top = signatures[contract.SERVING_DEFAULT](user_id=tf.constant([user]))[
      features.TOP_ITEM_IDS].numpy()[0]
  seen_item = sorted(seen[user])[0]
  candidates = list(top) + [seen_item]
  template = _eval_example_of(user, small_split)
  examples = [_with_item(template, item) for item in candidates]
  outputs = signatures[features.SCORING_SIGNATURE](examples=tf.constant(examples))
  ranks = outputs[features.RANK].numpy()
  np.testing.assert_array_equal(ranks[:model.TOP_K], np.arange(model.TOP_K))
  # The catalogue: the item vocabulary, analysed on train alone.
  catalogue = {item for items in _train_items_by_user(small_split["train"]).values()
               for item in items}
  assert ranks[-1] == len(catalogue)  # an item the user has: a certain miss
  raw = signatures[contract.RAW_SIGNATURE](
      user_id=tf.constant([user] * len(candidates)), item_id=tf.constant(candidates))
  np.testing.assert_array_equal(raw[features.RANK].numpy(), ranks)
  # popular_rank: how many unseen catalogue items are more popular than the
  # true one (counted over every interaction before the eval cut).
  counts = collections.Counter(item for items in seen.values() for item in items)
  unseen = [item for item in catalogue if item not in seen[user]]
  for item, popular_rank in zip(candidates[:-1], outputs[features.POPULAR_RANK].numpy()):
    assert sum(counts[other] > counts[item] for other in unseen) <= popular_rank <= sum(
        counts[other] >= counts[item] for other in unseen) - 1
  assert outputs[features.POPULAR_RANK].numpy()[-1] == len(catalogue)


def test_recent_items_in_a_request_are_masked_and_personalise_unknown_users(
    exported, small_split):
  _, signatures = exported
  seen = _train_items_by_user(small_split["train"] + small_split["validation"])
  user = sorted(seen)[0]
  recommend = signatures[features.HISTORY_SIGNATURE]
  stored = signatures[contract.SERVING_DEFAULT](user_id=tf.constant([user]))[
      features.TOP_ITEM_IDS].numpy()[0]
  # No recent items ("" only): the same answer as serving_default.
  same = recommend(user_id=tf.constant([user]), recent_item_ids=tf.constant([[""]]))
  np.testing.assert_array_equal(same[features.TOP_ITEM_IDS].numpy()[0], stored)
  # Items the request says the user just had are never recommended back.
  fresh = recommend(user_id=tf.constant([user]),
                    recent_item_ids=tf.constant([[stored[0], stored[1], b""]]))
  assert not {stored[0], stored[1]} & set(fresh[features.TOP_ITEM_IDS].numpy()[0])
  # An unknown user with recent items gets an answer from them, not the
  # popularity list every unknown user without history gets.
  another = sorted(seen)[1]
  history = [item for item in sorted(seen[another])][:5]
  out = recommend(user_id=tf.constant(["no-such-user", "no-such-user"]),
                  recent_item_ids=tf.constant([history, [b""] * len(history)]))
  personalised, popular = out[features.TOP_ITEM_IDS].numpy()
  assert not set(personalised) & set(history)
  assert list(personalised) != list(popular)
  np.testing.assert_array_equal(
      popular, signatures[contract.SERVING_DEFAULT](user_id=tf.constant(["no-such-user"]))[
          features.TOP_ITEM_IDS].numpy()[0])


def _rows_by_key(export_dir, attribute, vocabulary):
  """{key: row} of a vocabulary-indexed table of an exported model."""
  table = tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables")).get_tensor(
      f"{attribute}/embeddings/.ATTRIBUTES/VARIABLE_VALUE")
  keys = vocabulary_remap.saved_vocabulary(export_dir, vocabulary)
  return dict(zip(keys, table)), table


def _correlation(a, b):
  return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_warm_start_across_new_users_and_items_keeps_each_key_on_its_own_row(
    two_tower_trained, tmp_path):
  """The next span's log has 20 new users and 40 new items, and its
  frequency-ordered vocabularies put known keys at other indices. Warm
  started from the served model (a quarter of the steps), each known
  user's and item's row starts from its own row in the served model, not
  from whatever row had its index; new keys get fresh rows."""
  data_dir = str(tmp_path / "log")
  generate_interactions.generate(generate_interactions.GeneratorConfig(
      num_users=80, num_items=160, num_interactions=4000, min_per_user=20),
      seed=6, output_dir=data_dir)
  splits = {split: [e.SerializeToString()
                    for e in example_gen_executor.split_examples(data_dir, split)]
            for split in ("train", "validation")}
  _, base = two_tower_trained
  warm = tft_testing.train_family_model(
      model.run_fn, preprocessing.preprocessing_fn, SCHEMA, splits["train"],
      splits["validation"], str(tmp_path / "warm"), train_steps=40, base_model=base,
      warm_start_fraction=0.25)
  served = tf.saved_model.load(warm).signatures[features.SCORING_SIGNATURE](
      examples=tf.constant(splits["validation"][:4]))
  assert served["rank"].shape == [4]
  for attribute, vocabulary in (("item_embedding", features.ITEM_VOCAB),
                                ("user_embedding", features.USER_VOCAB)):
    base_rows, base_table = _rows_by_key(base, attribute, vocabulary)
    warm_rows, warm_table = _rows_by_key(warm, attribute, vocabulary)
    known = sorted(set(base_rows) & set(warm_rows))
    moved = [key for key in known
             if list(base_rows).index(key) != list(warm_rows).index(key)]
    assert len(warm_rows) > len(base_rows) and len(moved) > len(known) // 2, vocabulary
    # By key: the rows barely moved in 10 steps; by index they are strangers.
    assert _correlation([warm_rows[k] for k in moved], [base_rows[k] for k in moved]) > 0.8
    by_index = [i for i, key in enumerate(warm_rows) if i < len(base_rows)
                and list(base_rows)[i] != key]
    assert abs(_correlation(warm_table[by_index], base_table[by_index])) < 0.3
