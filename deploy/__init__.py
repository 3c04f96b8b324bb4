"""Deployment assets for Nexo (local infrastructure, compose, manifests)."""
