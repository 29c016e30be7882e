"""Sharded model -> results: the denoising runner, example inputs, the per-rank job of ``shardrules run`` and its
report.

Sits on top of ``loader`` and ``engine``; imported only by the commands and the public API, never by them.
"""
