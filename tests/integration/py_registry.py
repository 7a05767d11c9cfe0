#!/usr/bin/python3
"""Confluent's own Python client (python3-confluent-kafka's SchemaRegistryClient) against
streamgate's /registry: py_registry.py REGISTRY_URL SUBJECT

Runs each call once and prints one JSON object naming what each call returned, or for a call
that raised SchemaRegistryError its HTTP status and error_code, for test_registry.c to check.
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

url, subject = sys.argv[1], sys.argv[2]


def record(*fields):
    return json.dumps({"type": "record", "name": "Reading", "namespace": "py", "fields": list(fields)})


A = {"name": "a", "type": "int"}
B_DEFAULT = {"name": "b", "type": "string", "default": "x"}
C_NO_DEFAULT = {"name": "c", "type": "long"}
V1, V2, BAD = record(A), record(A, B_DEFAULT), record(A, B_DEFAULT, C_NO_DEFAULT)

client = SchemaRegistryClient({"url": url})
out = {}


def call(name, fn):
    try:
        out[name] = fn()
    except SchemaRegistryError as err:
        out[name] = {"http_status": err.http_status_code, "error_code": err.error_code, "message": err.error_message}


call("register_v1", lambda: client.register_schema(subject, Schema(V1, "AVRO")))
call("register_v2", lambda: client.register_schema(subject, Schema(V2, "AVRO")))
call("schema_by_id", lambda: json.loads(client.get_schema(out["register_v1"]).schema_str))
call("lookup", lambda: (lambda r: [r.schema_id, r.version, r.subject])(client.lookup_schema(subject, Schema(V1, "AVRO"))))
call("latest", lambda: (lambda r: [r.schema_id, r.version])(client.get_latest_version(subject)))
call("version_1", lambda: (lambda r: [r.schema_id, r.version])(client.get_version(subject, 1)))
call("versions", lambda: client.get_versions(subject))
call("subjects", lambda: client.get_subjects())
call("compatible", lambda: client.test_compatibility(subject, Schema(record(A, B_DEFAULT, {"name": "d", "type": "int", "default": 0}), "AVRO")))
call("incompatible", lambda: client.test_compatibility(subject, Schema(BAD, "AVRO")))
call("set_level", lambda: client.set_compatibility(subject_name=subject, level="full"))
call("level", lambda: client.get_compatibility(subject))
call("global_level", lambda: client.get_compatibility())
# errors: each raises SchemaRegistryError with Confluent's error_code
call("unknown_subject", lambda: client.get_latest_version(subject + "-missing"))
call("unknown_version", lambda: client.get_version(subject, 99))
call("unknown_schema", lambda: client.get_schema(987654))
call("register_incompatible", lambda: client.register_schema(subject, Schema(BAD, "AVRO")))
call("register_invalid", lambda: client.register_schema(subject, Schema('{"type": "record", "name": "x"', "AVRO")))
call("invalid_level", lambda: client.set_compatibility(subject_name=subject, level="sideways"))
call("invalid_version", lambda: client.get_version(subject, "first"))
call("invalid_subject", lambda: client.register_schema("no spaces allowed", Schema(V1, "AVRO")))
call("no_subject_level", lambda: client.get_compatibility(subject + "-never-configured"))
print(json.dumps(out))
