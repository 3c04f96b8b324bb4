"""Nexo contracts: versioned domain events, the CloudEvents envelope and its Kafka binary codec,
the topic table, the explicit event registry, JSON Schemas and the AsyncAPI document.

Pure pydantic, no I/O. Import the submodules: ``contracts.envelope``, ``contracts.codec``,
``contracts.topics``, ``contracts.registry``, ``contracts.types``, ``contracts.events.*``.
"""
