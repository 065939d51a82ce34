"""A trained model on new photos and videos: faces, the per-frame table, pictures of a face."""
