"""The optional compiled trace walk (`tracing.trace._walk`); everything else is configured in pyproject.toml.

`optional=True`: without a C compiler (or on a platform without 128-bit integers) the install still succeeds and
traces run the pure-Python walk."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracing.trace._walk", ["tracing/trace/_walk.c"], optional=True, extra_compile_args=["-O2", "-std=gnu11"]
        )
    ]
)
