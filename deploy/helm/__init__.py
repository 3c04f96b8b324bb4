"""Kubernetes packaging: the Helm chart ``nexo/`` and its generated inputs."""
