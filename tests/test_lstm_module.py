"""LSTM family: preprocessing through real tft_beam, and the trained export."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from modules.common import contract, training
from modules.lstm import features, layers, model, preprocessing
from pipeline import configs
from tests import tft_testing

SCHEMA = configs.LSTM.schema_path()
IDS_KEY = features.transformed_name(features.TEXT_KEY)
SEQ = features.SEQUENCE_LENGTH
# The keys of a 98-character vocabulary: 100 ids with padding and OOV.
KEYS = layers.character_keys([chr(0x4E00 + i).encode() for i in range(98)])
# Requests the raw signature must answer: empty, 10,000 characters, only
# characters no review contains, invalid UTF-8.
EDGE_TEXTS = ["".encode(), ("好" * 10_000).encode(), "🦄🦖𓀀".encode(), b"\xff\xfe\xfd"]


def serialize(text: bytes, label: int) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      features.TEXT_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text])),
      features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
  })).SerializeToString()


def expected_bucket(text: bytes) -> bytes:
  length = len(text.decode("utf-8", errors="replace"))
  index = sum(length >= bound for bound in features.LENGTH_BUCKET_BOUNDARIES)
  return features.LENGTH_BUCKET_NAMES[index].encode()


@pytest.fixture(scope="module")
def raw_examples(review_examples):
  """1,200 train and 300 eval reviews (tests/trained_models.py)."""
  return review_examples


@pytest.fixture(scope="module")
def transformed_reviews(tmp_path_factory, raw_examples):
  """300 real reviews plus crafted ones, analysed and transformed by tft_beam.

  The emoji 😀 occurs twice (enough for the vocabulary), 🦄 once (not enough).
  """
  tmp = tmp_path_factory.mktemp("lstm_tft")
  crafted = [serialize("😀很好😀".encode(), 1), serialize("🦄".encode(), 0),
             serialize(b"", 0), serialize(("差" * 450).encode(), 0)]
  serialized = raw_examples["train"][:300] + crafted
  schema = tft_testing.load_schema(SCHEMA)
  transformed_path = str(tmp / "transformed.gz")
  tft_output = tft_testing.analyze_and_transform(
      preprocessing.preprocessing_fn, tft_testing.decode(serialized, schema), schema,
      str(tmp / "tft"), transformed_path)
  return serialized, tft_output, tft_testing.read_transformed(transformed_path, tft_output)


def test_beam_output_is_padded_char_ids_with_length_buckets(transformed_reviews):
  serialized, _, transformed = transformed_reviews
  assert set(transformed) == {IDS_KEY, features.LENGTH_BUCKET_KEY, features.LABEL_KEY}
  ids = transformed[IDS_KEY]
  assert ids.shape == (len(serialized), SEQ) and ids.dtype == np.int64
  texts = [tf.train.Example.FromString(s).features.feature["text"].bytes_list.value[0]
           for s in serialized]
  # Padding (0) only after the characters: each row is a run of ids, then zeros.
  used = (ids != features.PADDING_ID).sum(axis=1)
  for row, count in zip(ids, used):
    assert np.all(row[:count] > 0) and np.all(row[count:] == 0)
  # Beam may reorder rows: compare as multisets against lengths in characters.
  lengths = [len(t.decode("utf-8")) for t in texts]
  assert sorted(used) == sorted(min(n, SEQ) for n in lengths)
  assert sorted(transformed[features.LENGTH_BUCKET_KEY]) == sorted(
      expected_bucket(t) for t in texts)


def test_vocabulary_keeps_characters_seen_twice(transformed_reviews):
  _, tft_output, _ = transformed_reviews
  vocabulary = tft_output.vocabulary_by_name(features.CHAR_VOCABULARY)
  assert "😀".encode() in vocabulary
  assert "🦄".encode() not in vocabulary
  assert "好".encode() in vocabulary and "差".encode() in vocabulary
  # A few thousand characters at most: 300 reviews use far fewer.
  assert 200 < len(vocabulary) < 5000


def test_transform_graph_maps_any_string_to_fixed_length_ids(transformed_reviews):
  _, tft_output, _ = transformed_reviews
  vocabulary = tft_output.vocabulary_by_name(features.CHAR_VOCABULARY)
  oov = len(vocabulary) + 1
  char_id = {c.decode(): i + 1 for i, c in enumerate(vocabulary)}
  texts = ["很好".encode()] + EDGE_TEXTS + ["😀".encode() * 2]
  out = tft_output.transform_raw_features(
      {features.TEXT_KEY: tf.constant([[t] for t in texts]),
       features.LABEL_KEY: tf.constant([[1]] * len(texts), tf.int64)})
  ids = out[IDS_KEY].numpy()
  assert ids.shape == (len(texts), SEQ)
  very_good, empty, long_text, unseen, invalid, emoji = ids
  assert list(very_good[:3]) == [char_id["很"], char_id["好"], 0]
  assert not empty.any()
  assert np.all(long_text == char_id["好"])
  assert list(unseen[:4]) == [oov, oov, oov, 0]
  assert np.all(invalid[:3] == oov) and invalid[3] == 0  # Three U+FFFD.
  assert list(emoji[:3]) == [char_id["😀"], char_id["😀"], 0]
  assert [b.decode() for b in out[features.LENGTH_BUCKET_KEY].numpy()] == [
      "000-019", "000-019", "200+", "000-019", "000-019", "000-019"]
  np.testing.assert_array_equal(out[features.LABEL_KEY].numpy(), [[1]] * len(texts))


@pytest.mark.parametrize("length, bucket", [
    (19, "000-019"), (20, "020-049"), (99, "050-099"), (100, "100-199"),
    (199, "100-199"), (200, "200+")])
def test_length_buckets_count_characters_not_bytes(transformed_reviews, length, bucket):
  _, tft_output, _ = transformed_reviews
  out = tft_output.transform_raw_features(
      {features.TEXT_KEY: tf.constant([[("好" * length).encode()]])})
  assert out[features.LENGTH_BUCKET_KEY].numpy()[0].decode() == bucket


@pytest.fixture(scope="module")
def exported(lstm_trained):
  """(work dir, export dir) of the model the session's LSTM pipeline run
  trained 40 steps on 1,200 real reviews, early-stopped on the validation
  carved out of them: the eval reviews stay unseen (tests/trained_models.py,
  shared with the end-to-end and TFLite tests)."""
  return lstm_trained


@pytest.fixture(scope="module")
def loaded(exported):
  """The trained model loaded with TF alone."""
  return tf.saved_model.load(exported[1])


def test_rebuilt_model_takes_the_exported_weights_and_refuses_other_shapes(
    exported, loaded, raw_examples):
  """The TFLite export rebuilds the Keras model from code (the SavedModel
  keeps no Keras traces): with the export's weights it computes what
  `serving_default` serves; one vocabulary entry more cannot load them."""
  work_dir, export_dir = exported
  char_ids = features.char_id_count(tft.TFTransformOutput(
      tft_testing.transform_graph_dir(work_dir)).vocabulary_size_by_name(features.CHAR_VOCABULARY))
  serialized = tf.constant(raw_examples["eval"][:16])
  ids = loaded.signatures[contract.TRANSFORM_SIGNATURE](examples=serialized)[IDS_KEY]
  served = loaded.signatures[contract.SERVING_DEFAULT](examples=serialized)
  rebuilt = training.with_weights_of(model.exported_architecture(char_ids), export_dir)
  np.testing.assert_allclose(rebuilt(ids, training=False).numpy().reshape(-1),
                             served[features.PROBABILITY].numpy(), atol=1e-6)
  with pytest.raises(ValueError, match="character_keys"):
    training.with_weights_of(model.exported_architecture(char_ids + 1), export_dir)


def test_model_learns_from_real_reviews(loaded, raw_examples):
  outputs = loaded.signatures[contract.SERVING_DEFAULT](
      examples=tf.constant(raw_examples["eval"]))
  labels = tft_testing.parse(raw_examples["eval"], tft_testing.load_schema(SCHEMA))["label"]
  auc = tf_keras.metrics.AUC()
  auc.update_state(labels, outputs[features.PROBABILITY])
  assert auc.result().numpy() > 0.75, f"eval AUC {auc.result().numpy():.3f} after 40 steps"


def test_signatures_agree_and_expose_transformed_features(loaded, raw_examples):
  assert set(loaded.signatures) == {contract.SERVING_DEFAULT, contract.RAW_SIGNATURE,
                                    contract.TRANSFORM_SIGNATURE}
  serialized = tf.constant(raw_examples["eval"][:8])
  from_examples = loaded.signatures[contract.SERVING_DEFAULT](examples=serialized)
  texts = tft_testing.parse(raw_examples["eval"][:8],
                            tft_testing.load_schema(SCHEMA))["text"]
  from_raw = loaded.signatures[contract.RAW_SIGNATURE](text=tf.reshape(texts, [-1]))
  probability = from_examples[features.PROBABILITY].numpy()
  assert probability.shape == (8,)
  np.testing.assert_allclose(from_raw[features.PROBABILITY].numpy(), probability, atol=1e-6)
  np.testing.assert_array_equal(from_examples[features.CLASS_ID].numpy(),
                                (probability >= 0.5).astype(np.int64))
  transformed = loaded.signatures[contract.TRANSFORM_SIGNATURE](examples=serialized)
  assert transformed[IDS_KEY].shape == (8, SEQ)
  assert list(transformed[features.LENGTH_BUCKET_KEY].numpy()) == [
      expected_bucket(t) for t in texts.numpy().reshape(-1)]


def test_raw_signature_answers_empty_long_unseen_and_invalid_text(loaded):
  from_raw = loaded.signatures[contract.RAW_SIGNATURE](text=tf.constant(EDGE_TEXTS))
  probability = from_raw[features.PROBABILITY].numpy()
  assert probability.shape == (len(EDGE_TEXTS),)
  assert np.all(np.isfinite(probability))
  # 10,000 x "好" (good) may saturate to exactly 1.0: still a probability.
  assert np.all((probability >= 0.0) & (probability <= 1.0))
  # Three unseen characters and three invalid bytes (three U+FFFD) are the
  # same three OOV ids to the model.
  assert probability[2] == probability[3]
  from_examples = loaded.signatures[contract.SERVING_DEFAULT](
      examples=tf.constant([serialize(t, 0) for t in EDGE_TEXTS]))
  np.testing.assert_allclose(from_examples[features.PROBABILITY].numpy(), probability, atol=1e-6)


def test_sequence_bigrams_line_up_with_the_characters():
  from modules.lstm.layers import CharNGramHash
  ids = tf.constant([[5, 6, 7, 0, 0], [0, 0, 0, 0, 0]], tf.int64)
  cut = CharNGramHash(2, 1000)(ids).numpy()
  aligned = CharNGramHash(2, 1000, same_length=True)(ids).numpy()
  assert cut.shape == (2, 4) and aligned.shape == (2, 5)
  np.testing.assert_array_equal(aligned[:, :4], cut)
  # Bigrams starting at 5 and 6 get bucket ids; those touching padding get 0.
  assert np.all((aligned[0, :2] >= 1) & (aligned[0, :2] <= 1000))
  assert not aligned[0, 2:].any() and not aligned[1].any()


def test_attention_pooling_ignores_padding_and_pools_empty_reviews_to_zeros():
  from modules.lstm.layers import MaskedAttentionPooling
  tf_keras.utils.set_random_seed(0)
  pooling = MaskedAttentionPooling(8)
  steps = tf.random.normal([1, 3, 4])
  padded = tf.concat([steps, 100.0 * tf.ones([1, 2, 4])], axis=1)
  alone = pooling(steps, mask=tf.constant([[True] * 3])).numpy()
  with_padding = pooling(padded, mask=tf.constant([[True] * 3 + [False] * 2])).numpy()
  np.testing.assert_allclose(with_padding, alone, atol=1e-6)
  # A convex combination of the unmasked steps: inside their range.
  assert np.all(alone <= steps.numpy().max(axis=1) + 1e-6)
  assert np.all(alone >= steps.numpy().min(axis=1) - 1e-6)
  empty = pooling(padded, mask=tf.constant([[False] * 5])).numpy()
  np.testing.assert_array_equal(empty, np.zeros([1, 4]))


def _random_weights(layer):
  rng = np.random.default_rng(1)
  return [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]


def test_chunked_bigru_gives_keras_outputs_for_any_mask():
  from modules.lstm.layers import ChunkedBidirectionalGRU
  inputs = tf.random.stateless_normal([4, 40, 5], seed=[0, 1])
  steps = np.arange(40)
  mask = tf.constant(np.stack([
      steps < 40,                     # a full row
      steps < 13,                     # padded after 13 steps (what Transform makes)
      steps < 0,                      # empty
      (steps % 3 != 0) & (steps < 31),  # gaps inside: Keras' rule still holds
  ]))
  bigru = tf_keras.layers.Bidirectional(tf_keras.layers.GRU(8, return_sequences=True))
  bigru(inputs)
  bigru.set_weights(_random_weights(bigru))  # Biases included, none left at zero.
  expected = bigru(inputs, mask=mask).numpy()
  for steps_per_iteration in (1, 10, 40):
    chunked = ChunkedBidirectionalGRU(tf_keras.layers.GRU(8, return_sequences=True),
                                      steps_per_iteration)
    chunked(inputs)
    chunked.set_weights(bigru.get_weights())
    np.testing.assert_allclose(chunked(inputs, mask=mask).numpy(), expected, atol=1e-5)
  with pytest.raises(ValueError, match="40 steps does not split into chunks of 7"):
    ChunkedBidirectionalGRU(tf_keras.layers.GRU(8, return_sequences=True), 7)(inputs)


@pytest.mark.parametrize("layer, merge_mode", [
    (tf_keras.layers.LSTM(4, return_sequences=True), "concat"),
    (tf_keras.layers.GRU(4, return_sequences=True, reset_after=False), "concat"),
    (tf_keras.layers.GRU(4, return_sequences=True), "sum"),
    (tf_keras.layers.GRU(4), "concat"),
], ids=["lstm", "reset_before", "summed", "last_state_only"])
def test_chunked_bigru_refuses_what_it_would_compute_differently(layer, merge_mode):
  from modules.lstm.layers import ChunkedBidirectionalGRU
  with pytest.raises(ValueError, match="bigru"):
    ChunkedBidirectionalGRU(layer, 10, merge_mode=merge_mode, name="bigru")


def _randomize_naive_bayes(classifier: tf_keras.Model, seed: int) -> None:
  """Gives the naive-Bayes layer (of the member or of an ensemble's member)
  random weights (they start at zeros, which would make its output constant
  and any weight mix-up silent)."""
  rng = np.random.default_rng(seed)
  [layer] = [layer for member in (classifier, *classifier.layers)
             if isinstance(member, tf_keras.Model)
             for layer in member.layers if layer.name == model.NAIVE_BAYES_LAYER]
  layer.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.1
                     for w in layer.get_weights()])


def test_tflite_graph_takes_the_trained_weights_and_scores_alike(tmp_path):
  from modules.lstm.layers import ChunkedBidirectionalGRU
  tf_keras.utils.set_random_seed(0)
  trained = model.average_of([model.serving_form_of(model.build_model(KEYS, variant=v))
                              for v in model.ENSEMBLE_MEMBERS])
  _randomize_naive_bayes(trained, seed=0)
  trained.save_weights(str(tmp_path / "weights"))
  tf_keras.utils.set_random_seed(1)  # Other initial weights: loading must replace them.
  converted = model.exported_architecture(100, gru_steps_per_loop_iteration=20)
  converted.load_weights(str(tmp_path / "weights")).assert_existing_objects_matched()
  inner = [layer for member in converted.layers if isinstance(member, tf_keras.Model)
           for layer in member.layers]
  assert any(isinstance(layer, ChunkedBidirectionalGRU) for layer in inner)
  ids = np.random.default_rng(0).integers(0, 100, size=[3, SEQ])
  ids[1, 37:] = 0
  ids[2] = 0  # An empty review.
  np.testing.assert_allclose(converted(ids, training=False).numpy(),
                             trained(ids, training=False).numpy(), atol=1e-6)


@pytest.mark.parametrize("variant, has_rnn, has_bags, has_naive_bayes", [
    (model.SEQUENCE, True, False, False), (model.BAGS, False, True, False),
    (model.COMBINED, True, True, False), (model.NAIVE_BAYES, False, False, True)])
def test_ablation_variants_keep_their_branches(variant, has_rnn, has_bags, has_naive_bayes):
  built = model.build_model(KEYS, variant=variant)
  names = {layer.name for layer in built.layers}
  assert ("bigru" in names) == has_rnn and ("bigru_attention" in names) == has_rnn
  assert ("char2_embedding" in names) == has_bags and ("char3_pool" in names) == has_bags
  assert (model.NAIVE_BAYES_LAYER in names) == has_naive_bayes
  assert built.output_shape == (None, 1)
  assert built.output_names == [features.PROBABILITY]
  probability = built(np.zeros([2, SEQ], np.int64), training=False).numpy()
  assert np.all(np.isfinite(probability))


def test_unknown_variant_is_refused():
  with pytest.raises(ValueError, match="variant"):
    model.build_model(KEYS, variant="lstm")


def test_first_occurrences_count_each_id_once_per_review():
  from modules.lstm.layers import first_occurrences
  ids = tf.constant([[3, 5, 3, 0, 5, 7, 7, 0], [0, 0, 4, 4, 4, 9, 3, 9]], tf.int64)
  np.testing.assert_array_equal(first_occurrences(ids).numpy(),
                                [[3, 5, 0, 0, 0, 7, 0, 0], [0, 0, 4, 0, 0, 9, 3, 0]])


def test_naive_bayes_ratios_are_smoothed_log_count_ratios_of_presence():
  """Unigrams over 3 positive and 2 negative reviews, counted once per review.

  Per class, each seen id's count + 1 over the class total: positive ids
  1: 3+1, 2: 1+1, 3: 0+1 (total 7); negative 1: 1+1, 2: 0+1, 3: 2+1 (total
  6). Id 4 appears nowhere and padding is never counted: both stay 0.
  """
  from modules.lstm.layers import NaiveBayesNGramLogit
  layer = NaiveBayesNGramLogit(orders=(1,), num_buckets=8, l2=0.0)
  ids = np.zeros([5, 6], np.int64)
  ids[0, :3] = [1, 1, 2]   # positive: 1 counted once
  ids[1, :1] = [1]         # positive
  ids[2, :2] = [1, 1]      # positive
  ids[3, :3] = [3, 1, 3]   # negative
  ids[4, :1] = [3]         # negative
  layer.adapt(ids, np.array([1, 1, 1, 0, 0]))
  # CharNGramHash(1) maps id i to bucket i + 1; bucket 0 is padding.
  ratio = layer.ratios[0].numpy()
  expected = {2: np.log((4 / 7) / (2 / 6)), 3: np.log((2 / 7) / (1 / 6)),
              4: np.log((1 / 7) / (3 / 6))}
  for bucket, value in expected.items():
    assert ratio[bucket] == pytest.approx(value, rel=1e-6)
  assert ratio[0] == 0 and ratio[5] == 0


def test_naive_bayes_logit_sums_weighted_ratios_of_distinct_ngrams():
  from modules.lstm.layers import NaiveBayesNGramLogit
  layer = NaiveBayesNGramLogit(orders=(1,), num_buckets=8, l2=0.0)
  layer.build((None, 6))
  layer.ratios[0].assign(np.arange(9, dtype=np.float32))
  layer.weights_by_order[0].assign(np.full(9, 0.5, np.float32))
  layer.bias.assign([-1.0])
  ids = np.array([[1, 1, 2, 0, 0, 0], [0] * 6], np.int64)
  # Distinct buckets 2 and 3: -1 + 0.5 * (2 + 3); an empty review gets the bias.
  np.testing.assert_allclose(layer(ids).numpy(), [[1.5], [-1.0]])


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 2, 1]])
def test_naive_bayes_adapt_refuses_labels_that_are_not_both_classes(labels):
  from modules.lstm.layers import NaiveBayesNGramLogit
  layer = NaiveBayesNGramLogit(orders=(1,), num_buckets=8, l2=0.0)
  with pytest.raises(ValueError, match="both classes"):
    layer.adapt(np.ones([3, 4], np.int64), np.array(labels))


def test_naive_bayes_member_folds_for_serving_into_half_the_tables_with_the_same_output():
  from modules.lstm.layers import NaiveBayesNGramLogit
  trained = model.build_model(KEYS, variant=model.NAIVE_BAYES)
  _randomize_naive_bayes(trained, seed=0)
  served = model.serving_form_of(trained)
  tables = lambda m: [w for w in m.weights if w.shape == (model.NAIVE_BAYES_BUCKETS + 1,)]
  assert len(tables(trained)) == 2 * len(model.NAIVE_BAYES_ORDERS)
  assert len(tables(served)) == len(model.NAIVE_BAYES_ORDERS)
  assert not served.trainable_weights
  ids = np.random.default_rng(0).integers(0, 100, size=[4, SEQ])
  ids[1, 10:] = 0
  ids[2] = 0  # An empty review.
  np.testing.assert_allclose(served(ids, training=False).numpy(),
                             trained(ids, training=False).numpy(), atol=1e-6)
  # A neural member is exported as it trained.
  sequence = model.build_model(KEYS, variant=model.SEQUENCE)
  assert model.serving_form_of(sequence) is sequence
  folded_layer = served.get_layer(model.NAIVE_BAYES_LAYER)
  assert isinstance(folded_layer, NaiveBayesNGramLogit)
  with pytest.raises(ValueError, match="folded for serving"):
    folded_layer.adapt(ids, np.array([0, 1, 0, 1]))
  with pytest.raises(ValueError, match="already folded"):
    folded_layer.folded_weights()


def test_exported_average_is_the_mean_of_its_members_probabilities():
  tf_keras.utils.set_random_seed(0)
  members = [model.build_model(KEYS, variant=v) for v in model.ENSEMBLE_MEMBERS]
  ensemble = model.average_of(members)
  _randomize_naive_bayes(ensemble, seed=0)
  ids = np.random.default_rng(0).integers(0, 100, size=[4, SEQ])
  ids[1, 10:] = 0
  ids[2] = 0  # An empty review.
  expected = np.mean([m(ids, training=False).numpy() for m in members], axis=0)
  assert ensemble.output_names == [features.PROBABILITY]
  np.testing.assert_allclose(ensemble(ids, training=False).numpy(), expected, atol=1e-6)
  # The members' outputs differ, so a wrong combination would show.
  assert not np.allclose(members[0](ids, training=False).numpy(), expected)


def test_ablation_seed_spread_summarises_each_variant_over_its_seeds():
  from data.reviews.lstm_ablation import seed_spread
  rows = [{"variant": "bags", "seed": 1, "validation": {"auc": 0.92}, "eval": {"auc": 0.91}},
          {"variant": "bags", "seed": 2, "validation": {"auc": 0.94}, "eval": {"auc": 0.93}},
          {"variant": "refit:bags", "seed": 1, "eval": {"auc": 0.90}},
          {"variant": "refit:bags", "seed": 2, "eval": {"auc": 0.92}}]
  spread = seed_spread(rows)
  assert spread["bags"]["seeds"] == [1, 2]
  assert spread["bags"]["validation"] == {"auc_mean": 0.93, "auc_sd": 0.0141,
                                          "auc_min": 0.92, "auc_max": 0.94}
  assert spread["bags"]["eval"]["auc_mean"] == 0.92
  # A refit has no validation score: only its eval spread is given.
  assert set(spread["refit:bags"]) == {"seeds", "eval"}


def _ids_of(texts, vocabulary):
  """Reviews -> [N, SEQ] ids as Transform gives them for `vocabulary`."""
  index = {token: i + 1 for i, token in enumerate(vocabulary)}
  ids = np.zeros([len(texts), SEQ], np.int64)
  for row, text in enumerate(texts):
    ids[row, :len(text)] = [index.get(c.encode(), len(vocabulary) + 1) for c in text]
  return ids


def test_warm_start_follows_each_character_to_its_new_id(tmp_path):
  """The served ensemble's neural members, warm-started over a vocabulary in
  another order with characters dropped and added, give the same
  probability on the same text; the naive-Bayes member starts afresh."""
  old = [chr(0x4E00 + i).encode() for i in range(98)]
  new = [chr(0x4E00 + 200 + i).encode() for i in range(5)] + old[::-1][:90]
  tf_keras.utils.set_random_seed(0)
  served_members = [model.build_model(layers.character_keys(old), variant=v)
                    for v in model.ENSEMBLE_MEMBERS]
  served = model.average_of([model.serving_form_of(m) for m in served_members])
  export_dir = str(tmp_path / "served")
  # The parts of the Trainer's SavedModel a warm start reads: the checkpoint
  # (keyed by the model's own attribute paths, as training.export_serving_model
  # saves it without traces) and the vocabulary among the assets.
  served.save_weights(os.path.join(export_dir, "variables", "variables"))
  os.makedirs(os.path.join(export_dir, "assets"))
  with open(os.path.join(export_dir, "assets", features.CHAR_VOCABULARY), "wb") as f:
    f.write(b"".join(token + b"\n" for token in old))

  tf_keras.utils.set_random_seed(1)
  members = [model.build_model(layers.character_keys(new), variant=v)
             for v in model.ENSEMBLE_MEMBERS]
  fresh_naive_bayes = [w.copy() for w in members[-1].get_weights()]
  model.warm_started(members, export_dir, new)

  rng = np.random.default_rng(0)
  shared = [token.decode() for token in old[::-1][:90]]
  texts = ["".join(rng.choice(shared, size=n)) for n in (3, 40, SEQ)]
  for variant, served_member, member in zip(model.ENSEMBLE_MEMBERS, served_members, members):
    if variant == model.NAIVE_BAYES:
      for fresh, now in zip(fresh_naive_bayes, member.get_weights()):
        np.testing.assert_array_equal(now, fresh)
      continue
    np.testing.assert_allclose(member(_ids_of(texts, new), training=False).numpy(),
                               served_member(_ids_of(texts, old), training=False).numpy(),
                               atol=1e-6)
    np.testing.assert_array_equal(
        member.get_layer(model.CHARACTER_KEYS_LAYER).get_weights()[0],
        layers.character_keys(new))
