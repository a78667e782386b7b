"""Signals: the transparent at-risk score and the calibrated churn model."""
