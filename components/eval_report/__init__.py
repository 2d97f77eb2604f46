"""Evaluation report: each Evaluator output as one offline HTML page and a JSON file.

`component` is the TFX component the pipeline runs after the Evaluator;
`python -m runners.review --model FAMILY` shows the latest one.
"""
