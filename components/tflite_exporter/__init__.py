"""TFLiteExporter: the blessed, pushed model as a parity-checked .tflite file.

Shared logic (conversion, parity gate, atomic publishing, the prediction CLI)
lives here; each model family contributes only an adapter
(`modules/<family>/tflite.py`, see adapter.py).
"""
