"""What trained runs say: evaluation, metrics, comparison, literature, heatmaps and speed."""
