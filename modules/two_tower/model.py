"""Two-tower retrieval model: the Trainer's `run_fn` for the `two_tower` family.

The task is YouTube's candidate generation: predict the item a user picks
next from what they picked before. Every train interaction is an example
whose history is the user's earlier train items (movielens.TimelineRow), so
training asks exactly what the time split evaluates: the user's next items.

User (query) tower: the history's item embeddings plus a learned embedding
of each position (recency), pooled by attention (a learned score per entry,
softmax over the entries present), concatenated with the user-id embedding,
demographics (age bucket, gender, occupation, zip region) and the history's
length, through a small MLP. Item (candidate) tower: the item-id embedding
plus a projection of its genres, release-year bucket and title words, and a
per-item bias. The bias rides along as an extra coordinate (query side 1,
candidate side the bias) so retrieval stays one dot product.

With a catalogue of thousands of items the loss is the full softmax over all
of them: no sampled negatives, hence no sampling-bias correction. Items
already in the example's history are masked (serving never recommends them).

Hyper-parameters were chosen on a validation split carved from train by time
(each user's last 2 train interactions), never on the eval split; see
docs/model-families.md "Two-tower on real MovieLens-100k".
"""
import contextlib
import dataclasses
from typing import Dict, Iterator

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

from modules.common import compression as compression_lib, contract, training, vocabulary_remap
from modules.two_tower import catalog as catalog_lib
from modules.two_tower import features, preprocessing, retrieval
from modules.two_tower.movielens import HISTORY_LENGTH
from modules.two_tower.retrieval import RetrievalIndex

TOP_K = 10


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
  embedding_dim: int = 64
  feature_dim: int = 8       # embeddings of the side features
  dropout: float = 0.2       # on the query tower's input
  # Share of train examples whose user id is replaced by the out-of-vocabulary
  # one, so that slot learns "a user known only by their history" (a new user
  # passing recent items to recommend_with_history).
  unknown_user_rate: float = 0.05
  learning_rate: float = 2e-3


HPARAMS = Hyperparameters()
# An epoch is ~376 steps over ml-100k's 96k train rows; the family's train
# steps (pipeline/configs.py) were chosen on validation recall@10.
SETTINGS = training.TrainingSettings(batch_size=256, steps_per_epoch=380)


@dataclasses.dataclass(frozen=True)
class Vocabularies:
  """Sizes of the index ranges the embeddings cover (each with its OOV slot)."""
  users: int
  items: int
  genders: int
  occupations: int
  zip_regions: int
  title_words: int

  @classmethod
  def of(cls, tf_transform_output: tft.TFTransformOutput) -> "Vocabularies":
    def size(name):  # + the out-of-vocabulary bucket
      return tf_transform_output.vocabulary_size_by_name(name) + 1
    return cls(users=size(features.USER_VOCAB), items=size(features.ITEM_VOCAB),
               genders=size(features.GENDER_VOCAB),
               occupations=size(features.OCCUPATION_VOCAB),
               zip_regions=size(features.ZIP_VOCAB), title_words=size(features.TITLE_VOCAB))

  def unknown_user_features(self):
    """Catalog row of a user outside the vocabulary: unknown age, OOV rest."""
    return (0, self.genders - 1, self.occupations - 1, self.zip_regions - 1)


def _embedding(size: int, dim: int, name: str) -> tf_keras.layers.Embedding:
  return tf_keras.layers.Embedding(size, dim, name=name)


class TwoTowerModel(tf_keras.Model):
  """Both towers and the full-softmax next-item loss (train_step / test_step)."""

  def __init__(self, vocabularies: Vocabularies, catalog: catalog_lib.Catalog,
               hparams: Hyperparameters = HPARAMS, **kwargs):
    super().__init__(**kwargs)
    self.hparams = hparams
    dim, side = hparams.embedding_dim, hparams.feature_dim
    self.history_embedding = _embedding(vocabularies.items, dim, "history_embedding")
    self.position_embedding = _embedding(HISTORY_LENGTH, dim, "position_embedding")
    self.attention = tf_keras.layers.Dense(1, name="attention")
    self.user_embedding = _embedding(vocabularies.users, dim, "user_embedding")
    self.unknown_user = vocabularies.users - 1
    self.user_feature_embeddings = [
        _embedding(size, side, f"user_{name}_embedding") for name, size in (
            ("age", preprocessing.AGE_BUCKETS), ("gender", vocabularies.genders),
            ("occupation", vocabularies.occupations), ("zip", vocabularies.zip_regions))]
    self.query_dropout = tf_keras.layers.Dropout(hparams.dropout)
    self.query_mlp = tf_keras.Sequential([
        tf_keras.layers.Dense(2 * dim, activation="relu"),
        tf_keras.layers.Dense(dim)], name="query_mlp")
    self.item_embedding = _embedding(vocabularies.items, dim, "item_embedding")
    self.year_embedding = _embedding(preprocessing.YEAR_BUCKETS, side, "year_embedding")
    self.title_embedding = _embedding(vocabularies.title_words, side, "title_embedding")
    self.item_features_projection = tf_keras.layers.Dense(dim, name="item_features")
    self.item_bias = tf_keras.layers.Embedding(
        vocabularies.items, 1, embeddings_initializer="zeros", name="item_bias")
    self.item_genres = tf.constant(catalog.item_genres)
    self.item_years = tf.constant(catalog.item_years)
    self.item_titles = tf.constant(catalog.item_titles)
    self.num_items = catalog.num_items

  def query(self, inputs: Dict[str, tf.Tensor], training=False) -> tf.Tensor:
    """[batch, dim + 1] query vectors, last coordinate 1 (meets the item bias).

    `inputs` holds the transformed user id, history, history length and
    user features (an example's own, or a known user's Catalog row)."""
    history = inputs[catalog_lib.HISTORY_XF]
    present = history >= 0
    entries = (self.history_embedding(tf.maximum(history, 0))
               + self.position_embedding(tf.range(tf.shape(history)[1]))[tf.newaxis])
    attention = self.attention(tf.tanh(entries))[:, :, 0]
    attention = tf.where(present, attention, tf.constant(-1e9))
    weights = tf.nn.softmax(attention, axis=1) * tf.cast(present, tf.float32)
    pooled = tf.reduce_sum(weights[:, :, tf.newaxis] * entries, axis=1)
    length = tf.cast(tf.reshape(inputs[catalog_lib.HISTORY_LENGTH_XF], [-1, 1]), tf.float32)
    users = tf.reshape(inputs[catalog_lib.USER_XF], [-1])
    if training:
      forget = tf.random.uniform(tf.shape(users)) < self.hparams.unknown_user_rate
      users = tf.where(forget, tf.constant(self.unknown_user, users.dtype), users)
    parts = [pooled, tf.math.log1p(length) / np.log1p(HISTORY_LENGTH),
             self.user_embedding(users)]
    parts += [layer(tf.reshape(inputs[key], [-1])) for layer, key in
              zip(self.user_feature_embeddings, catalog_lib.USER_FEATURES_XF)]
    vector = self.query_mlp(self.query_dropout(tf.concat(parts, axis=1), training=training))
    return tf.concat([vector, tf.ones_like(vector[:, :1])], axis=1)

  def candidates(self) -> tf.Tensor:
    """[num_items, dim + 1] candidate vectors, last coordinate the item bias."""
    items = tf.range(self.num_items, dtype=tf.int64)
    titles = self.item_titles
    words = self.title_embedding(tf.maximum(titles, 0)) * tf.cast(
        titles >= 0, tf.float32)[:, :, tf.newaxis]
    mean_words = tf.reduce_sum(words, axis=1) / tf.maximum(
        tf.reduce_sum(tf.cast(titles >= 0, tf.float32), axis=1, keepdims=True), 1.0)
    side = tf.concat([self.item_genres, self.year_embedding(self.item_years), mean_words],
                     axis=1)
    vector = self.item_embedding(items) + self.item_features_projection(side)
    return tf.concat([vector, self.item_bias(items)], axis=1)

  def call(self, inputs: Dict[str, tf.Tensor], training=False):
    """Logits of every item as each example's next item; history masked."""
    logits = tf.matmul(self.query(inputs, training), self.candidates(), transpose_b=True)
    history = inputs[catalog_lib.HISTORY_XF]
    mask = retrieval.history_mask(history, tf.cast(self.num_items, tf.int64))
    # An item picked again is not masked as its own label.
    mask *= 1.0 - tf.one_hot(tf.reshape(inputs[catalog_lib.ITEM_XF], [-1]), self.num_items)
    return tf.where(mask > 0, tf.constant(retrieval.MASKED_SCORE), logits)

  def _loss(self, inputs, training: bool) -> tf.Tensor:
    """Mean cross-entropy over examples whose item is in the catalogue (an
    item first seen in eval has no candidate vector to be scored by)."""
    items = tf.reshape(inputs[catalog_lib.ITEM_XF], [-1])
    in_catalogue = items < self.num_items
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(in_catalogue, items, tf.zeros_like(items)),
        logits=self(inputs, training=training))
    weights = tf.cast(in_catalogue, tf.float32)
    return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)

  def train_step(self, data):
    with tf.GradientTape() as tape:
      loss = _replica_share(self._loss(data, training=True))
    self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
    return {"loss": loss}

  def test_step(self, data):
    return {"loss": _replica_share(self._loss(data, training=False))}


def _replica_share(loss: tf.Tensor) -> tf.Tensor:
  """A replica's share of the mean loss over the global batch: on several
  replicas (training.distribution_strategy) their gradients are summed, and
  so are the losses Keras reports from them."""
  return loss / tf.distribute.get_strategy().num_replicas_in_sync


def known_user_inputs(index, user_index: tf.Tensor) -> Dict[str, tf.Tensor]:
  """A user's query-tower inputs from the Catalog tables in `index`."""
  user_index = tf.reshape(user_index, [-1])
  user_features = tf.gather(index.user_features, user_index)
  inputs = {catalog_lib.USER_XF: user_index,
            catalog_lib.HISTORY_XF: tf.gather(index.user_history, user_index),
            catalog_lib.HISTORY_LENGTH_XF: tf.gather(index.user_history_length, user_index)}
  inputs.update({key: user_features[:, column]
                 for column, key in enumerate(catalog_lib.USER_FEATURES_XF)})
  return inputs


def prepend_history(recent: tf.Tensor, stored: tf.Tensor) -> tf.Tensor:
  """[batch, HISTORY_LENGTH]: a request's recent items, then the stored
  history, padding dropped in between (a stable sort moves it last)."""
  both = tf.concat([recent, stored], axis=1)
  width = tf.shape(both, out_type=tf.int64)[1]
  order = tf.argsort(tf.where(both >= 0, tf.range(width)[tf.newaxis], width + tf.range(width)),
                     axis=1)
  return tf.gather(both, order, batch_dims=1)[:, :HISTORY_LENGTH]


def masked_scores(model: TwoTowerModel, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
  """[batch, num_items] scores for query-tower inputs (an example's own or a
  known user's Catalog row); what the user has is masked."""
  return retrieval.masked_scores(model.index, inputs[catalog_lib.USER_XF],
                                 inputs[catalog_lib.HISTORY_XF], model.query(inputs))


def recommend(model: TwoTowerModel, inputs: Dict[str, tf.Tensor], k: int):
  """(item ids, scores) of the top k unseen items for query-tower inputs."""
  return retrieval.top_k(model.index, masked_scores(model, inputs), k)


def one_pass(fn_args: FnArgs, tf_transform_output: tft.TFTransformOutput
              ) -> tf.data.Dataset:
  """Transformed train and validation examples (every interaction before
  the eval cut), each exactly once, for the Catalog."""
  return fn_args.data_accessor.tf_dataset_factory(
      list(fn_args.train_files) + list(fn_args.eval_files),
      tfxio.TensorFlowDatasetOptions(batch_size=4096, num_epochs=1, shuffle=False),
      tf_transform_output.transformed_metadata.schema)


def serve_transformed(model: TwoTowerModel, transformed) -> training.Outputs:
  """Scoring signature: the true item's rank among the user's unseen items,
  under the model and under the most-popular ranking."""
  scores = masked_scores(model, transformed)
  items = transformed[catalog_lib.ITEM_XF]
  return {features.RANK: retrieval.rank(scores, items),
          features.POPULAR_RANK: retrieval.rank(
              retrieval.popularity_scores(model.index, scores), items)}


def raw_signature(model: TwoTowerModel):
  """`serving_raw`: the rank of `item_id` for known user `user_id`, plain strings."""
  def factory(predict_raw):
    del predict_raw  # The user's inputs come from the Catalog, not the request.

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.USER_ID),
                                  tf.TensorSpec([None], tf.string, name=features.ITEM_ID)])
    def rank_item(user_id, item_id):
      transformed = model.tft_layer({features.USER_ID: tf.reshape(user_id, [-1, 1]),
                                     features.ITEM_ID: tf.reshape(item_id, [-1, 1])})
      scores = masked_scores(model, known_user_inputs(model.index,
                                                      transformed[catalog_lib.USER_XF]))
      return {features.RANK: retrieval.rank(scores, transformed[catalog_lib.ITEM_XF])}
    return rank_item
  return factory


def recommend_signatures(model: TwoTowerModel, k: int):
  """`serving_default` (user ids in, top-k unseen item ids and scores out)
  and `recommend_with_history` (the same, plus the request's recent items)."""
  def factory(transform_raw):
    def user_indices(user_id):
      return transform_raw({features.USER_ID: tf.reshape(user_id, [-1, 1])})[
          catalog_lib.USER_XF]

    def outputs(item_ids, scores):
      return {features.TOP_ITEM_IDS: item_ids, features.TOP_SCORES: scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.USER_ID)])
    def recommend_known(user_id):
      return outputs(*model.recommend_for_index(user_indices(user_id)))

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=features.USER_ID),
        tf.TensorSpec([None, None], tf.string, name=features.RECENT_ITEM_IDS)])
    def recommend_with_history(user_id, recent_item_ids):
      # from_dense leaves the "" padding out.
      recent = transform_raw({features.HISTORY: tf.sparse.from_dense(recent_item_ids)})[
          catalog_lib.HISTORY_XF]
      inputs = known_user_inputs(model.index, user_indices(user_id))
      inputs[catalog_lib.HISTORY_XF] = prepend_history(recent, inputs[catalog_lib.HISTORY_XF])
      return outputs(*recommend(model, inputs, k))
    return {contract.SERVING_DEFAULT: recommend_known,
            features.HISTORY_SIGNATURE: recommend_with_history}
  return factory


def _example(values: Dict[str, list]) -> bytes:
  def feature(value):
    if value and isinstance(value[0], int):
      return tf.train.Feature(int64_list=tf.train.Int64List(value=value))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
  return tf.train.Example(features=tf.train.Features(
      feature={key: feature(value) for key, value in values.items()})).SerializeToString()


def warmup_requests(known_user: bytes, known_item: bytes):
  """A known and an unknown user for each signature; the scoring signature
  gets a complete raw tf.Example, as TFMA sends."""
  unknown_user = b"__warmup_unknown_user__"
  example = _example({
      features.USER_ID: [known_user], features.ITEM_ID: [known_item],
      features.GENRES_KEY: [features.GENRE_NAMES[0].encode()], features.RATING: [3],
      features.TIMESTAMP: [0], features.TITLE: [b"Warmup (1995)"],
      features.RELEASE_YEAR: [1995], features.USER_AGE: [30],
      features.USER_GENDER: [b"F"], features.USER_OCCUPATION: [b"other"],
      features.USER_ZIP: [b"00000"], features.HISTORY: [known_item],
      features.HISTORY_LENGTH: [1]})
  users = np.array([known_user, unknown_user], dtype=object)
  return {
      contract.SERVING_DEFAULT: {features.USER_ID: users},
      features.HISTORY_SIGNATURE: {
          features.USER_ID: users,
          features.RECENT_ITEM_IDS: np.array([[known_item, b""]] * 2, dtype=object)},
      features.SCORING_SIGNATURE: {
          contract.EXAMPLES_INPUT: np.array([example], dtype=object)},
      contract.RAW_SIGNATURE: {features.USER_ID: users,
                               features.ITEM_ID: np.array([known_item] * 2, dtype=object)},
  }


def attach_index(model: TwoTowerModel, catalog: catalog_lib.Catalog, item_vocabulary,
                 k: int) -> None:
  """Freezes the candidates and Catalog into the model and adds
  `recommend_for_index` (user vocabulary index in, top k out), the function
  `serving_default` and the TFLite export both run."""
  model.index = RetrievalIndex(model.candidates().numpy(),
                               np.array(item_vocabulary, dtype=object), catalog)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=catalog_lib.USER_XF)])
  def recommend_for_index(user_index):
    return recommend(model, known_user_inputs(model.index, user_index), k)
  model.recommend_for_index = recommend_for_index


# The weights whose rows a Transform vocabulary indexes (each with one OOV
# row last), by the model attribute holding them: a warm start moves their
# rows to where each user, item, feature value or title word now is.
VOCABULARY_ROWS = (
    vocabulary_remap.VocabularyRows("history_embedding/", features.ITEM_VOCAB),
    vocabulary_remap.VocabularyRows("item_embedding/", features.ITEM_VOCAB),
    vocabulary_remap.VocabularyRows("item_bias/", features.ITEM_VOCAB),
    vocabulary_remap.VocabularyRows("user_embedding/", features.USER_VOCAB),
    vocabulary_remap.VocabularyRows("title_embedding/", features.TITLE_VOCAB),
    # user_feature_embeddings: age buckets (0, fixed), then these three.
    vocabulary_remap.VocabularyRows("user_feature_embeddings/1/", features.GENDER_VOCAB),
    vocabulary_remap.VocabularyRows("user_feature_embeddings/2/", features.OCCUPATION_VOCAB),
    vocabulary_remap.VocabularyRows("user_feature_embeddings/3/", features.ZIP_VOCAB),
)


def _built(model: TwoTowerModel, fn_args: FnArgs,
           tf_transform_output: tft.TFTransformOutput) -> None:
  """Creates the model's variables (and its pruning wrappers') on one batch."""
  model(next(iter(training.make_dataset(fn_args, fn_args.train_files, tf_transform_output,
                                        None, batch_size=2, shuffle=False, num_epochs=1))))


def _warm_started(model: TwoTowerModel, base_model: str, fn_args: FnArgs,
                  tf_transform_output: tft.TFTransformOutput) -> None:
  """Creates the model's variables on one batch and loads the served
  model's weights into them, rows remapped by key (VOCABULARY_ROWS)."""
  _built(model, fn_args, tf_transform_output)
  vocabulary_remap.restore_remapped(
      model, base_model,
      {rows.vocabulary: tf_transform_output.vocabulary_by_name(rows.vocabulary)
       for rows in VOCABULARY_ROWS}, VOCABULARY_ROWS)


# With `pruning` compression: the share of zeros in the weights of
# PRUNED_LAYERS at the end of training.
PRUNED_SPARSITY = 0.8
# The layers pruned (by attribute): the id and title-word embedding tables
# and the dense layers of both towers. Left whole: the item bias (one number
# an item), the position, side-feature and year embeddings and the
# attention vector, each a small table whose every row is used.
PRUNED_LAYERS = ("history_embedding", "user_embedding", "item_embedding", "title_embedding",
                 "query_mlp", "item_features_projection")


@contextlib.contextmanager
def pruning(model: TwoTowerModel, train_steps: int) -> Iterator[None]:
  """Within: PRUNED_LAYERS of `model` wrapped for pruning to PRUNED_SPARSITY
  over `train_steps` (build them, then fit with
  compression.pruning_callbacks()). After: the plain layers again, holding
  the zeros, as the model is exported and a later span's warm start
  restores it."""
  plain = {name: getattr(model, name) for name in PRUNED_LAYERS}
  for name, layer in plain.items():
    setattr(model, name, compression_lib.pruned_layer(layer, PRUNED_SPARSITY, train_steps))
  try:
    yield
  finally:
    for name, layer in plain.items():
      setattr(model, name, layer)


def run_fn(fn_args: FnArgs) -> None:
  """TFX Trainer entry point (referenced as `modules.two_tower.model.run_fn`)."""
  tf_keras.utils.set_random_seed(SETTINGS.seed)
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  fn_args, base_model = training.warm_start(fn_args)
  vocabularies = Vocabularies.of(tf_transform_output)
  item_vocabulary = tf_transform_output.vocabulary_by_name(features.ITEM_VOCAB)
  catalog = catalog_lib.collect(one_pass(fn_args, tf_transform_output),
                                vocabularies.users - 1, vocabularies.items - 1,
                                vocabularies.unknown_user_features())
  strategy = training.distribution_strategy(fn_args)
  settings, learning_rate = training.for_replicas(SETTINGS, HPARAMS.learning_rate, strategy)
  compression = training.compression_of(fn_args, features.COMPRESSIONS)
  with strategy.scope():
    model = TwoTowerModel(vocabularies, catalog)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate))
    if base_model:
      _warm_started(model, base_model, fn_args, tf_transform_output)
  if compression == contract.PRUNING:
    with strategy.scope(), pruning(model, fn_args.train_steps):
      # UpdatePruningStep reads the wrappers' step counters as training begins.
      _built(model, fn_args, tf_transform_output)
      training.fit(fn_args, model, tf_transform_output, None, settings,
                   extra_callbacks=compression_lib.pruning_callbacks())
  else:
    training.fit(fn_args, model, tf_transform_output, None, settings)
  k = min(TOP_K, len(item_vocabulary))
  attach_index(model, catalog, item_vocabulary, k)
  user_vocabulary = tf_transform_output.vocabulary_by_name(features.USER_VOCAB)
  training.export_serving_model(
      model, tf_transform_output, fn_args.serving_model_dir, training.ServingExport(
          label_key="",  # Retrieval: the true item is an input, not a label.
          serve_transformed=serve_transformed, raw_signature_factory=raw_signature(model),
          warmup_requests=warmup_requests(user_vocabulary[0], item_vocabulary[0]),
          example_signature=features.SCORING_SIGNATURE,
          extra_signatures=recommend_signatures(model, k)))
