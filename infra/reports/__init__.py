"""Rendered reports (PDF with charts)."""
