"""Ablation of the LSTM family's classifier on the honest protocol.

Trains `modules.lstm.model.build_model` in its four variants (the recurrent
branch alone, the hashed char n-gram bags alone, both in one model, the
naive-Bayes n-gram logistic regression, its ratios counted on the training
records first) on the train split minus its validation records, early-stops
each on validation AUC exactly as the Trainer does (SETTINGS: batch 64,
epochs of 100 steps, patience 2, best weights restored, at most TRAIN_STEPS
= the pipeline's 600 steps), and only then scores the restored model on
validation and on the untouched eval split. When the run includes all
ENSEMBLE_MEMBERS it adds the `ensemble` row: the mean of their
probabilities, what `run_fn` exports. Validation is the train-split records
`contract.is_validation_record` picks (10% by hash of the serialized
tf.Example), as ExampleGen carves them; eval is never used to train, stop or
choose anything.

The character ids are made in NumPy by the rule of
`modules/lstm/preprocessing.py` (vocabulary over the first SEQUENCE_LENGTH
characters of the training records, kept at CHAR_FREQUENCY_THRESHOLD
occurrences, one OOV id after it, 0 = padding), not through tf.Transform,
so a run takes minutes rather than a pipeline.

    python -m data.reviews.lstm_ablation            # writes lstm_ablation.json
    python -m data.reviews.lstm_ablation --variants sequence
    python -m data.reviews.lstm_ablation --refit    # adds the refit rows
    python -m data.reviews.lstm_ablation --variants sequence bags naive_bayes \
        --seeds 42 1 2 3 4 --out lstm_seeds.json    # the spread over seeds

`--refit` then trains each variant again, for the steps early stopping
chose, on train and validation together (as the CNN's run_fn does), and
scores eval once: `refit:<variant>` rows, and `refit:ensemble` when both
members ran. Nothing is left to judge a refit model on but eval, so these
rows report; they cannot select.

`--seeds` trains every variant once per seed (the seed sets weight
initialisation and dropout; the batches' order stays fixed), so a row
carries its `seed`, and with more than one seed `seed_spread` gives each
variant's mean, standard deviation, minimum and maximum AUC over them: how
much of a difference between two runs the seed alone makes.
"""
import argparse
import collections
import json
import os
import statistics
import time
from typing import Dict, List, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from modules.common import contract  # noqa: E402
from modules.lstm import features, model as lstm_model  # noqa: E402
from modules.lstm.layers import character_keys  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The LSTM family's TrainArgs (pipeline/configs.py): early stopping usually
# ends a run well before.
TRAIN_STEPS = 600
FEATURES = {features.TEXT_KEY: tf.io.FixedLenFeature([], tf.string),
            features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
# Characters tf.Transform keeps out of vocabulary files (they end a line);
# they map to the OOV id there, so they do here.
_NOT_IN_VOCABULARY = {"\n", "\r"}


def read_split(path: str) -> List[Tuple[bytes, str, int]]:
  """(serialized tf.Example, text, label) of each record of a GZIP TFRecord file."""
  records = []
  for serialized in tf.data.TFRecordDataset(path, compression_type="GZIP").as_numpy_iterator():
    example = tf.io.parse_single_example(serialized, FEATURES)
    records.append((serialized, example[features.TEXT_KEY].numpy().decode("utf-8", "replace"),
                    int(example[features.LABEL_KEY])))
  return records


def char_vocabulary(texts: List[str]) -> Dict[str, int]:
  """Character -> id (1-based, by descending count), as Transform computes it."""
  counts = collections.Counter(
      c for text in texts for c in text[:features.SEQUENCE_LENGTH] if c not in _NOT_IN_VOCABULARY)
  kept = sorted((c for c, n in counts.items() if n >= features.CHAR_FREQUENCY_THRESHOLD),
                key=lambda c: (-counts[c], c))
  return {c: i + 1 for i, c in enumerate(kept)}


def char_ids(texts: List[str], vocabulary: Dict[str, int]) -> np.ndarray:
  oov = len(vocabulary) + 1
  ids = np.full([len(texts), features.SEQUENCE_LENGTH], features.PADDING_ID, np.int64)
  for row, text in enumerate(texts):
    chars = text[:features.SEQUENCE_LENGTH]
    ids[row, :len(chars)] = [vocabulary.get(c, oov) for c in chars]
  return ids


def auc_and_accuracy(labels: np.ndarray, scores: np.ndarray) -> Dict[str, float]:
  auc = tf_keras.metrics.AUC(num_thresholds=10_000)
  auc.update_state(labels, scores)
  return {"auc": round(float(auc.result()), 4),
          "accuracy": round(float(np.mean((scores >= 0.5) == (labels == 1))), 4)}


def _training_stream(ids: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
  """Shuffled (fixed seed), repeated batches: what every variant trains on."""
  return (tf.data.Dataset.from_tensor_slices((ids, labels))
          .shuffle(len(labels), seed=0).repeat().batch(batch_size))


def run_variant(variant: str, data: Dict[str, Tuple[np.ndarray, np.ndarray]],
                char_keys: np.ndarray, seed: int) -> Tuple[dict, Dict[str, np.ndarray]]:
  """Trains one variant as the Trainer trains a member; its result and its
  validation and eval scores."""
  settings = lstm_model.SETTINGS
  tf_keras.utils.set_random_seed(seed)
  classifier = lstm_model.build_model(char_keys, variant=variant)
  lstm_model.adapt_to_training_data(classifier, *data["train"])
  train = _training_stream(*data["train"], settings.batch_size)
  validation = tf.data.Dataset.from_tensor_slices(data["validation"]).batch(256)
  stopping = tf_keras.callbacks.EarlyStopping(
      monitor=settings.early_stopping_monitor, mode="max",
      patience=settings.early_stopping_patience, restore_best_weights=True)
  start = time.time()
  history = classifier.fit(train, steps_per_epoch=settings.steps_per_epoch,
                           epochs=TRAIN_STEPS // settings.steps_per_epoch,
                           validation_data=validation, callbacks=[stopping], verbose=2)
  seconds = time.time() - start
  curve = history.history[settings.early_stopping_monitor]
  best_epoch = int(np.argmax(curve)) + 1
  result = {"variant": variant, "seed": seed, "params": int(classifier.count_params()),
            "epochs_run": len(curve), "best_epoch": best_epoch,
            "steps_chosen": best_epoch * settings.steps_per_epoch,
            "validation_auc_by_epoch": [round(float(v), 4) for v in curve],
            "train_seconds": round(seconds)}
  # Scored only after training has ended on the validation-chosen weights.
  scores = {}
  for split in ("validation", "eval"):
    ids, labels = data[split]
    scores[split] = classifier.predict(ids, batch_size=512, verbose=0).reshape(-1)
    result[split] = auc_and_accuracy(labels, scores[split])
  return result, scores


def refit_variant(variant: str, steps: int, data: Dict[str, Tuple[np.ndarray, np.ndarray]],
                  char_keys: np.ndarray, seed: int) -> Tuple[dict, np.ndarray]:
  """The variant trained `steps` steps on train + validation, no early
  stopping; its result and its eval scores."""
  settings = lstm_model.SETTINGS
  tf_keras.utils.set_random_seed(seed)
  classifier = lstm_model.build_model(char_keys, variant=variant)
  ids = np.concatenate([data["train"][0], data["validation"][0]])
  labels = np.concatenate([data["train"][1], data["validation"][1]])
  lstm_model.adapt_to_training_data(classifier, ids, labels)
  train = _training_stream(ids, labels, settings.batch_size)
  start = time.time()
  classifier.fit(train, steps_per_epoch=settings.steps_per_epoch,
                 epochs=steps // settings.steps_per_epoch, verbose=2)
  scores = classifier.predict(data["eval"][0], batch_size=512, verbose=0).reshape(-1)
  return ({"variant": f"refit:{variant}", "seed": seed, "steps_chosen": steps,
           "train_seconds": round(time.time() - start),
           "eval": auc_and_accuracy(data["eval"][1], scores)}, scores)


def ensemble_result(members: List[Tuple[dict, Dict[str, np.ndarray]]],
                    data: Dict[str, Tuple[np.ndarray, np.ndarray]], seed: int) -> dict:
  """What `run_fn` exports: the mean of the members' probabilities."""
  result = {"variant": lstm_model.ENSEMBLE, "seed": seed,
            "members": [r["variant"] for r, _ in members],
            "params": sum(r["params"] for r, _ in members),
            "train_seconds": sum(r["train_seconds"] for r, _ in members)}
  for split in ("validation", "eval"):
    result[split] = auc_and_accuracy(
        data[split][1], np.mean([scores[split] for _, scores in members], axis=0))
  return result


def seed_spread(results: List[dict]) -> Dict[str, dict]:
  """Per variant, over its rows (one per seed): AUC mean, sd, min and max."""
  spread = {}
  for variant in dict.fromkeys(r["variant"] for r in results):
    rows = [r for r in results if r["variant"] == variant]
    spread[variant] = {"seeds": [r["seed"] for r in rows]}
    for split in ("validation", "eval"):
      aucs = [r[split]["auc"] for r in rows if split in r]
      if len(aucs) > 1:
        spread[variant][split] = {
            "auc_mean": round(statistics.mean(aucs), 4),
            "auc_sd": round(statistics.stdev(aucs), 4),
            "auc_min": min(aucs), "auc_max": max(aucs)}
  return spread


def train_and_score(args: argparse.Namespace, data: Dict[str, Tuple[np.ndarray, np.ndarray]],
                    char_keys: np.ndarray, seed: int) -> List[dict]:
  """The rows of one seed: each variant, the ensemble, and with --refit the refits."""
  trained = {v: run_variant(v, data, char_keys, seed) for v in args.variants}
  results = [result for result, _ in trained.values()]
  if all(v in trained for v in lstm_model.ENSEMBLE_MEMBERS):
    results.append(ensemble_result([trained[v] for v in lstm_model.ENSEMBLE_MEMBERS], data,
                                   seed))
  if args.refit:
    refits = {v: refit_variant(v, trained[v][0]["steps_chosen"], data, char_keys, seed)
              for v in args.variants}
    results.extend(result for result, _ in refits.values())
    if all(v in refits for v in lstm_model.ENSEMBLE_MEMBERS):
      results.append({
          "variant": f"refit:{lstm_model.ENSEMBLE}", "seed": seed,
          "members": [f"refit:{v}" for v in lstm_model.ENSEMBLE_MEMBERS],
          "eval": auc_and_accuracy(data["eval"][1], np.mean(
              [refits[v][1] for v in lstm_model.ENSEMBLE_MEMBERS], axis=0))})
  return results


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data-dir", default=HERE)
  parser.add_argument("--variants", nargs="+", default=list(lstm_model.VARIANTS),
                      choices=lstm_model.VARIANTS)
  parser.add_argument("--out", default=os.path.join(HERE, "lstm_ablation.json"))
  parser.add_argument("--refit", action="store_true",
                      help="also refit each variant on train + validation (see above)")
  parser.add_argument("--seeds", nargs="+", type=int, default=[lstm_model.SETTINGS.seed],
                      help="train every variant once per seed (see above)")
  args = parser.parse_args(argv)

  train_records = read_split(os.path.join(args.data_dir, "train", "reviews-train.tfrecord.gz"))
  eval_records = read_split(os.path.join(args.data_dir, "eval", "reviews-eval.tfrecord.gz"))
  splits = {
      "train": [r for r in train_records if not contract.is_validation_record(r[0])],
      "validation": [r for r in train_records if contract.is_validation_record(r[0])],
      "eval": eval_records,
  }
  vocabulary = char_vocabulary([text for _, text, _ in splits["train"]])
  data = {name: (char_ids([t for _, t, _ in records], vocabulary),
                 np.array([label for _, _, label in records], np.float32))
          for name, records in splits.items()}
  char_keys = character_keys([c.encode() for c in vocabulary])
  results = [result for seed in args.seeds
             for result in train_and_score(args, data, char_keys, seed)]
  report = {
      "protocol": "train = train split minus validation; validation = train-split records "
                  "contract.is_validation_record picks (early stopping on val_auc, best "
                  "weights restored); eval scored once, after training",
      "examples": {name: len(records) for name, records in splits.items()},
      "vocabulary_size": len(vocabulary),
      "settings": {"batch_size": lstm_model.SETTINGS.batch_size,
                   "steps_per_epoch": lstm_model.SETTINGS.steps_per_epoch,
                   "early_stopping_patience": lstm_model.SETTINGS.early_stopping_patience,
                   "max_train_steps": TRAIN_STEPS, "seeds": args.seeds},
      "tensorflow_version": tf.__version__,
      "results": results,
  }
  if len(args.seeds) > 1:
    report["seed_spread"] = seed_spread(results)
  for r in results:
    steps = r.get("steps_chosen", "+".join(r.get("members", [])))
    validation = (f"validation AUC {r['validation']['auc']:.4f} acc "
                  f"{r['validation']['accuracy']:.4f}" if "validation" in r
                  else "validation -")
    print(f"{r['variant']:>16} seed {r['seed']}: {validation} | eval AUC "
          f"{r['eval']['auc']:.4f} acc {r['eval']['accuracy']:.4f} | {steps} steps, "
          f"{r.get('train_seconds', '-')} s")
  tmp = args.out + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
  os.replace(tmp, args.out)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
