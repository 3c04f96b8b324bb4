"""nexo-messaging: transports, transactional outbox + relay, inbox, consumer runner, DLQ.

Modules (each holds what it is named for):

* ``transport`` — ``Transport``/``Producer``/``Consumer`` interfaces, ``Record``, ``OutMessage``,
  ``TP``, ``TopicSpec``;
* ``memory`` — ``MemoryBroker``/``MemoryTransport`` (embedded default, fault switch
  ``broker.available``); ``kafka`` — ``KafkaTransport`` (aiokafka);
* ``tables`` — ``outbox_table``/``inbox_table``; ``outbox`` — ``enqueue``/``enqueue_many``;
* ``relay`` — ``OutboxRelay``, ``RelaySettings``, ``outbox_stats``, ``cleanup_published``;
* ``inbox`` — ``record_processed``/``record_processed_many``;
* ``consumer`` — ``ConsumerSpec``, ``EventMeta``, ``ConsumerRunner``; ``decoding`` — record →
  event (``EventMeta``, ``fast_decode``);
* ``dlq`` — ``list_dead_letters``, ``replay``, ``discard``, ``DeadLetter``;
* ``runtime`` — ``build_transport``, ``MessagingRuntime`` (the app-lifespan seam);
* ``topics_admin`` — ``ensure_topics``; ``ops`` — ``outbox_stats``, ``consumer_lag``;
* ``metrics`` (Prometheus), ``errors`` (``PermanentError`` …, ``is_transient``), ``context``
  (correlation ids).
"""
