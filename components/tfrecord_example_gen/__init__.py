"""ExampleGen for `train/` and `eval/` folders of tf.Example TFRecords,
with the validation split carved out of train by hash."""
