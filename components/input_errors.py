"""The error every check of a family's input data raises: it names the file,
folder or span at fault and the fix, and the runners turn it into one line and
a documented exit status (runners/preflight.py)."""


class InputDataError(ValueError):
  """The input data cannot be read as the family's ExampleGen expects."""


# How a refusal of input data begins, on the terminal or in a task's log.
BAD_INPUT_PREFIX = "error: bad input data:"
