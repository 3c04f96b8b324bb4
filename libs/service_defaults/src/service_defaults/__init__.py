"""service-defaults."""
