"""Measuring: timing, calibrated ceilings, environment, devices."""
