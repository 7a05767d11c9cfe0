#!/usr/bin/python3
"""A streamgate worker written with kafka-python, an independent Kafka client: it answers
requests by the header contract (README, "Writing a worker"). Used by the integration tests to
show that nothing in the contract depends on librdkafka.

usage: py_worker.py BOOTSTRAP REQUEST_TOPIC   (prints "ready" once it reads from the end)
"""
import json
import struct
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, request_topic = sys.argv[1], sys.argv[2]
# kafka-python's defaults, as a worker would use them: it probes the broker's version itself
# (Apache Kafka 4.1 reads as 2.5 to kafka-python 2.0.2, the mock cluster as 2.3; both work).
consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
partitions = [TopicPartition(request_topic, p) for p in consumer.partitions_for_topic(request_topic)]
consumer.assign(partitions)
consumer.seek_to_end(*partitions)
for tp in partitions:
    consumer.position(tp)  # resolve the end now, before announcing readiness
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
print("ready", flush=True)

for record in consumer:
    headers = dict(record.headers)
    correlation = headers.get("kafka_correlationId")
    reply_topic = headers.get("kafka_replyTopic")
    if correlation is None or reply_topic is None:
        continue
    partition = None
    if "kafka_replyPartition" in headers:
        partition = struct.unpack(">i", headers["kafka_replyPartition"])[0]
    body = json.dumps({"worker": "kafka-python", "echo": json.loads(record.value)}).encode()
    producer.send(reply_topic.decode(), value=body, partition=partition,
                  headers=[("kafka_correlationId", correlation), (":status", b"201"),
                           ("content-type", b"application/json")]).get(timeout=10)
