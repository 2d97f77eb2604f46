"""The shim Beam's --setup_file runs (`python setup.py sdist`) to ship this
project to Dataflow, Flink and Spark workers; the metadata is pyproject.toml's."""
import setuptools

setuptools.setup()
