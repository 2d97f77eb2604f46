"""Two-tower retrieval model: the Trainer's `run_fn` for the `two_tower` family.

Query tower: user-id embedding refined by a small residual MLP. Candidate
tower: item-id embedding and multi-hot genres through a small MLP, plus a
per-item bias. Both end in a vector whose dot product is the score; the bias
rides along as an extra coordinate (query side 1, candidate side the bias) so
retrieval stays a single dot product.

Training uses in-batch softmax: each example's item is the positive and the
other items of the batch are its negatives. Negatives drawn that way are
popular items far more often than rare ones, so logits are corrected by
-log P(item in batch) (logQ correction); without it the model learns to
demote popular items, while the data (and the oracle) say users pick them
more often. Copies of the positive item elsewhere in the batch are masked,
not counted as negatives.
"""
import dataclasses
from typing import Dict

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from modules.common import contract, training
from modules.two_tower import catalog as catalog_lib
from modules.two_tower import features
from modules.two_tower.retrieval import RetrievalIndex

TOP_K = 10


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
  embedding_dim: int = 32
  hidden_units: int = 64
  temperature: float = 1.0
  learning_rate: float = 3e-3
  embedding_l2: float = 1e-5


HPARAMS = Hyperparameters()
# An epoch is about one pass over the 97k shipped train rows; eval recall@10
# peaks after 4-6 epochs and then drops as user embeddings overfit, hence
# the family's 475 train steps (5 epochs).
SETTINGS = training.TrainingSettings(batch_size=1024, steps_per_epoch=95)


def query_vectors(model, user_index: tf.Tensor, temperature: float) -> tf.Tensor:
  """The query tower of `model`: a TwoTowerModel, or the Keras object loaded
  back from its SavedModel (same layers, none of the Python methods), which
  the TFLite exporter converts."""
  embedding = model.user_embedding(tf.reshape(user_index, [-1]))
  vector = (embedding + model.query_mlp(embedding)) / temperature
  return tf.concat([vector, tf.ones_like(vector[:, :1])], axis=1)


class TwoTowerModel(tf_keras.Model):
  """Both towers and the in-batch softmax loss (train_step / test_step)."""

  def __init__(self, num_users: int, num_items: int, item_log_q: np.ndarray,
               hparams: Hyperparameters = HPARAMS, **kwargs):
    super().__init__(**kwargs)
    self.hparams = hparams
    regularizer = tf_keras.regularizers.l2(hparams.embedding_l2)
    self.user_embedding = tf_keras.layers.Embedding(
        num_users + 1, hparams.embedding_dim, embeddings_regularizer=regularizer,
        name="user_embedding")
    self.query_mlp = tf_keras.Sequential([
        tf_keras.layers.Dense(hparams.hidden_units, activation="relu"),
        tf_keras.layers.Dense(hparams.embedding_dim)], name="query_mlp")
    self.item_embedding = tf_keras.layers.Embedding(
        num_items + 1, hparams.embedding_dim, embeddings_regularizer=regularizer,
        name="item_embedding")
    self.item_bias = tf_keras.layers.Embedding(
        num_items + 1, 1, embeddings_initializer="zeros", name="item_bias")
    self.candidate_mlp = tf_keras.Sequential([
        tf_keras.layers.Dense(hparams.hidden_units, activation="relu"),
        tf_keras.layers.Dense(hparams.embedding_dim)], name="candidate_mlp")
    self.item_log_q = tf.constant(item_log_q, tf.float32)

  def query(self, user_index: tf.Tensor) -> tf.Tensor:
    """[batch, dim + 1] query vectors, last coordinate 1 (meets the item bias)."""
    return query_vectors(self, user_index, self.hparams.temperature)

  def candidate(self, item_index: tf.Tensor, genres: tf.Tensor) -> tf.Tensor:
    """[batch, dim + 1] candidate vectors, last coordinate the item bias."""
    item_index = tf.reshape(item_index, [-1])
    embedding = self.item_embedding(item_index)
    vector = embedding + self.candidate_mlp(tf.concat([embedding, genres], axis=1))
    return tf.concat([vector, self.item_bias(item_index)], axis=1)

  def call(self, inputs: Dict[str, tf.Tensor], training=False):
    del training  # No layer behaves differently in training.
    return (self.query(inputs[catalog_lib.USER_XF]),
            self.candidate(inputs[catalog_lib.ITEM_XF], inputs[catalog_lib.GENRES_XF]))

  def _in_batch_loss(self, inputs, training: bool) -> tf.Tensor:
    queries, candidates = self(inputs, training=training)
    items = tf.reshape(inputs[catalog_lib.ITEM_XF], [-1])
    logits = tf.matmul(queries, candidates, transpose_b=True)
    logits -= tf.gather(self.item_log_q, items)[tf.newaxis, :]
    duplicate = tf.equal(items[:, tf.newaxis], items[tf.newaxis, :])
    duplicate &= ~tf.eye(tf.shape(items)[0], dtype=tf.bool)
    logits = tf.where(duplicate, tf.constant(-1e9, logits.dtype), logits)
    labels = tf.range(tf.shape(items)[0])
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))

  def train_step(self, data):
    with tf.GradientTape() as tape:
      loss = self._in_batch_loss(data, training=True)
      total = loss + tf.add_n(self.losses) if self.losses else loss
    self.optimizer.minimize(total, self.trainable_variables, tape=tape)
    return {"loss": loss}

  def test_step(self, data):
    return {"loss": self._in_batch_loss(data, training=False)}


def _one_pass(fn_args: tfx.components.FnArgs, tf_transform_output: tft.TFTransformOutput
              ) -> tf.data.Dataset:
  """Transformed train examples, each exactly once, for the Catalog."""
  return fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files,
      tfxio.TensorFlowDatasetOptions(batch_size=4096, num_epochs=1, shuffle=False),
      tf_transform_output.transformed_metadata.schema)


def serve_transformed(model: TwoTowerModel, transformed) -> training.Outputs:
  """Rank of the true item among the user's unseen items (scoring signature)."""
  users = transformed[catalog_lib.USER_XF]
  scores = model.index.scores(users, model.query(users))
  return {features.RANK: model.index.rank(scores, transformed[catalog_lib.ITEM_XF])}


def raw_signature(predict_raw):
  """`serving_raw`: the rank of `item_id` for `user_id`, from plain strings."""
  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.USER_ID),
                                tf.TensorSpec([None], tf.string, name=features.ITEM_ID)])
  def rank_item(user_id, item_id):
    return predict_raw({features.USER_ID: tf.reshape(user_id, [-1, 1]),
                        features.ITEM_ID: tf.reshape(item_id, [-1, 1])})
  return rank_item


def top_k_signatures(model: TwoTowerModel, k: int):
  """`serving_default`: user ids in, the top-k unseen item ids and scores out."""
  def factory(transform_raw):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.USER_ID)])
    def recommend(user_id):
      users = transform_raw({features.USER_ID: tf.reshape(user_id, [-1, 1])})[
          catalog_lib.USER_XF]
      item_ids, scores = model.index.top_k(model.index.scores(users, model.query(users)), k)
      return {features.TOP_ITEM_IDS: item_ids, features.TOP_SCORES: scores}
    return {contract.SERVING_DEFAULT: recommend}
  return factory


def warmup_requests(known_user: bytes, known_item: bytes):
  """A known and an unknown user for each signature; the scoring signature
  gets a complete raw tf.Example, as TFMA sends."""
  unknown_user = b"__warmup_unknown_user__"
  example = tf.train.Example(features=tf.train.Features(feature={
      features.USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[known_user])),
      features.ITEM_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[known_item])),
      features.GENRES_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[features.GENRE_NAMES[0].encode()])),
      features.RATING: tf.train.Feature(int64_list=tf.train.Int64List(value=[3])),
      features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
  }))
  users = np.array([known_user, unknown_user], dtype=object)
  return {
      contract.SERVING_DEFAULT: {features.USER_ID: users},
      features.SCORING_SIGNATURE: {
          contract.EXAMPLES_INPUT: np.array([example.SerializeToString()], dtype=object)},
      contract.RAW_SIGNATURE: {features.USER_ID: users,
                               features.ITEM_ID: np.array([known_item] * 2, dtype=object)},
  }


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """TFX Trainer entry point (referenced as `modules.two_tower.model.run_fn`)."""
  tf_keras.utils.set_random_seed(SETTINGS.seed)
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  user_vocab = tf_transform_output.vocabulary_by_name(features.USER_VOCAB)
  item_vocab = tf_transform_output.vocabulary_by_name(features.ITEM_VOCAB)
  catalog = catalog_lib.collect(_one_pass(fn_args, tf_transform_output),
                                len(user_vocab), len(item_vocab))
  model = TwoTowerModel(len(user_vocab), len(item_vocab), catalog.log_sampling_probability())
  model.compile(optimizer=tf_keras.optimizers.Adam(HPARAMS.learning_rate))
  training.fit(fn_args, model, tf_transform_output, None, SETTINGS)
  candidates = model.candidate(tf.range(len(item_vocab), dtype=tf.int64),
                               tf.constant(catalog.item_genres))
  model.index = RetrievalIndex(candidates.numpy(), np.array(item_vocab, dtype=object), catalog)
  training.export_serving_model(
      model, tf_transform_output, fn_args.serving_model_dir, training.ServingExport(
          label_key="",  # Retrieval: the true item is an input, not a label.
          serve_transformed=serve_transformed, raw_signature_factory=raw_signature,
          warmup_requests=warmup_requests(user_vocab[0], item_vocab[0]),
          example_signature=features.SCORING_SIGNATURE,
          extra_signatures=top_k_signatures(model, min(TOP_K, len(item_vocab)))))
