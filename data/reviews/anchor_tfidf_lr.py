"""Measures the reference anchor on the reviews split: char 1-3-gram TF-IDF + logistic regression.

Why: an LSTM trained on data/reviews/ needs a cheap, well-understood baseline
on exactly the same train/eval split to be judged against. Character n-grams
suit Chinese text, which has no word spaces, and need no tokenizer. The
vectorizer is fitted on train only, so eval stays unseen.

scikit-learn is an optional dev dependency (pinned in constraints.txt); the
pipeline itself does not need it.

    python data/reviews/anchor_tfidf_lr.py
"""
import argparse
import json
import os
import sys

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = {"text": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64)}


def load_split(path: str) -> tuple[list[str], np.ndarray]:
  """Reads one GZIP TFRecord split with tf.data; returns (texts, int labels)."""
  dataset = tf.data.TFRecordDataset(path, compression_type="GZIP").map(
      lambda record: tf.io.parse_single_example(record, FEATURES))
  texts, labels = [], []
  for example in dataset.as_numpy_iterator():
    texts.append(example["text"].decode("utf-8"))
    labels.append(example["label"])
  return texts, np.asarray(labels, np.int64)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data-dir", default=HERE)
  parser.add_argument("--out", default=os.path.join(HERE, "anchor_results.json"))
  args = parser.parse_args(argv)
  try:
    import sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
  except ImportError:
    print("error: scikit-learn is not installed; it is an optional dev dependency.\n"
          "  install it with: pip install scikit-learn  (constraints.txt pins the version)",
          file=sys.stderr)
    return 1

  paths = {name: os.path.join(args.data_dir, name, f"reviews-{name}.tfrecord.gz")
           for name in ("train", "eval")}
  for path in paths.values():
    if not os.path.isfile(path):
      print(f"error: split not found: {path}\n  build it with data/reviews/build_reviews.py",
            file=sys.stderr)
      return 1
  train_texts, train_labels = load_split(paths["train"])
  eval_texts, eval_labels = load_split(paths["eval"])

  vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3))
  model = LogisticRegression(max_iter=1000)
  model.fit(vectorizer.fit_transform(train_texts), train_labels)
  eval_features = vectorizer.transform(eval_texts)
  scores = model.predict_proba(eval_features)[:, 1]
  results = {
      "model": "TfidfVectorizer(analyzer='char', ngram_range=(1, 3)) + "
               "LogisticRegression(max_iter=1000)",
      "sklearn_version": sklearn.__version__,
      "train_examples": len(train_texts),
      "eval_examples": len(eval_texts),
      "eval_auc": round(float(roc_auc_score(eval_labels, scores)), 4),
      "eval_accuracy": round(float(accuracy_score(eval_labels, model.predict(eval_features))), 4),
  }
  tmp = args.out + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2)
    f.write("\n")
  os.replace(tmp, args.out)
  print(f"eval AUC {results['eval_auc']:.4f}, accuracy {results['eval_accuracy']:.4f} "
        f"-> {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
