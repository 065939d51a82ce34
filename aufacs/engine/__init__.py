"""Training: run folders and checkpoints, devices and mixed precision, recipes, and the Trainer."""
