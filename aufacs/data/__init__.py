"""The data layer: raw BP4D / DISFA files to audited, aligned, cached training samples."""
