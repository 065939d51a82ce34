"""A plain CNN as an aufacs plug-in model (aufacs's docs/your_model.md)."""
