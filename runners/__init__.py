"""What only the runners use: Beam presets, input checks, the output layout,
the roots-to-arguments builder, the run summary and the review CLI.

The floor above `pipeline/`: nothing under `pipeline/`, `components/` or
`modules/` imports from here.
"""
