"""Versioned domain events. Each concrete event is listed explicitly in `contracts.registry`."""
