"""Recommend service: commitment purchase plans near the hindsight optimum, and cost anomaly detection."""
