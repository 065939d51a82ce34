"""The foundations: errors, configuration dataclasses, AU sets and the 49 points, file writes."""
