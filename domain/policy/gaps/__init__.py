"""Gap analysis: the catalogue of governance gaps, their detectors and the severity score."""
