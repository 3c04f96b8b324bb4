"""nexo-messaging."""
