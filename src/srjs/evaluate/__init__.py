"""Evaluation: metrics, MATLAB-style resizing, datasets, tiling, latency, reports."""
