"""Evaluation report: each Evaluator output as one offline HTML page and a JSON file.

`component` is the TFX component the pipeline runs after the Evaluator;
`python -m components.eval_report review --model FAMILY` shows the latest one.
"""
