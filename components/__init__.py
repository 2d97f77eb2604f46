"""Custom TFX components and resolver strategies of tfx-model-factory."""
