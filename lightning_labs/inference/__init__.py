"""Using a trained network: testing, predicting, exporting, and measuring its latency."""
