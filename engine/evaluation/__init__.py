"""Evaluation on held-out images and decision-threshold calibration."""
