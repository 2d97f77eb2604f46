"""What TFMA's confidence intervals cost the Evaluator, measured on a finished run.

Runs TFX's own Evaluator executor (what the pipeline's Evaluator node runs,
on the in-process DirectRunner preset) on the run's Trainer model and
ExampleGen's eval split, with the family's EvalConfig as the pipeline builds
it and with the same config less its interval options. One warm-up run,
then the two alternate `--repeats` times, so both see the same machine.

    .venv/bin/python bench/evaluator_intervals.py --model lstm \
        --examples-uri URI --model-uri URI [--repeats 3]

Prints one JSON object: seconds per repeat with and without intervals, and
the ratio of their medians. bench/run_bench.py calls it on each fresh run.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow_model_analysis as tfma  # noqa: E402
from tfx.components.evaluator import executor as evaluator_executor  # noqa: E402
from tfx.dsl.components.base import base_beam_executor  # noqa: E402
from tfx.types import artifact_utils, standard_artifacts  # noqa: E402
from tfx.utils import proto_utils  # noqa: E402

from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT  # noqa: E402
from pipeline import configs, evaluation  # noqa: E402
from runners import beam_presets  # noqa: E402


def _evaluate_once(eval_config_json: str, examples_uri: str, split_names: List[str],
                   model_uri: str) -> float:
  """Seconds of one Evaluator executor run, outputs into a throw-away folder."""
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  examples.split_names = artifact_utils.encode_split_names(split_names)
  model = standard_artifacts.Model()
  model.uri = model_uri
  with tempfile.TemporaryDirectory(prefix="bench-evaluator-") as out:
    evaluation_artifact = standard_artifacts.ModelEvaluation()
    evaluation_artifact.uri = os.path.join(out, "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = os.path.join(out, "blessing")
    executor = evaluator_executor.Executor(base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=beam_presets.DIRECT_ARGS, tmp_dir=os.path.join(out, "tmp")))
    started = time.monotonic()
    executor.Do({"examples": [examples], "model": [model]},
                {"evaluation": [evaluation_artifact], "blessing": [blessing]},
                {"eval_config": eval_config_json,
                 "example_splits": json.dumps([EVAL_SPLIT])})
    return time.monotonic() - started


def measure(family: configs.FamilyConfig, examples_uri: str, split_names: List[str],
            model_uri: str, repeats: int) -> Dict:
  with_intervals = evaluation.build_eval_config(family)
  without_intervals = evaluation.build_eval_config(family)
  without_intervals.ClearField("options")
  configs_json = {"with": proto_utils.proto_to_json(with_intervals),
                  "without": proto_utils.proto_to_json(without_intervals)}
  _evaluate_once(configs_json["without"], examples_uri, split_names, model_uri)  # warm-up
  seconds = {"with": [], "without": []}
  for _ in range(repeats):
    for kind in ("without", "with"):
      seconds[kind].append(_evaluate_once(configs_json[kind], examples_uri, split_names,
                                          model_uri))
  return {"without_intervals_s": seconds["without"], "with_intervals_s": seconds["with"],
          "ratio_of_medians": statistics.median(seconds["with"])
          / statistics.median(seconds["without"]),
          "method": tfma.ConfidenceIntervalOptions.ConfidenceIntervalMethod.Name(
              evaluation.CONFIDENCE_INTERVAL_METHOD)}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, choices=sorted(configs.FAMILIES))
  parser.add_argument("--examples-uri", required=True, help="ExampleGen's examples artifact")
  parser.add_argument("--split-names", nargs="+", default=[TRAIN_SPLIT, VALIDATION_SPLIT, EVAL_SPLIT])
  parser.add_argument("--model-uri", required=True, help="the Trainer's model artifact")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  print(json.dumps(measure(configs.get_family(args.model), args.examples_uri,
                           args.split_names, args.model_uri, args.repeats)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
