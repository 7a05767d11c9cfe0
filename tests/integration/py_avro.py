#!/usr/bin/python3
"""Confluent-framed Avro through the Apache Avro Python library (python3-avro), for interop tests.

Usage:
  py_avro.py decode SCHEMA_FILE  < framed_bytes   prints {"id": N, "value": VALUE} (one line)
  py_avro.py encode SCHEMA_FILE ID < json_value   writes magic 0 + 4-byte big-endian ID + Avro

SCHEMA_FILE is the Avro schema (JSON text); ID is the schema id to put in the frame (0..2^32-1).
Framing is checked strictly: a wrong magic byte, a short header, an undecodable payload or bytes
left over make `decode` print the reason to stderr and exit 1; so does a value `encode` cannot
encode (exit 2 for bad usage). Run it with Debian's /usr/bin/python3, which has python3-avro.
It is a test tool: the binary encoding and decoding are done by avro.io (DatumWriter/DatumReader,
BinaryEncoder/BinaryDecoder, with union branches kept exactly); this file only maps between
Python objects and JSON.

VALUE is in the JSON form of streamgate's converter (bridge/sg_avro.h), which is Avro's JSON
encoding except:
  - a two-branch union with "null" takes a plain value (null or the other branch's value);
    other unions are {"branch name": value}, the name being the full name of a named type or
    the type's name ("int", "string", "array", "map"; a logical type goes by its base type);
    `encode` also accepts the wrapped form {"string": "x"} for null-unions;
  - bytes and fixed: a string whose code points 0..255 are the bytes;
  - decimal (python: decimal.Decimal): a string with exactly `scale` fraction digits ("12.50");
    `encode` also takes a JSON number or any numeric string with at most `scale` fraction digits;
  - uuid (python: str): its string;
  - date (python: datetime.date): "YYYY-MM-DD" (python dates span the years 1..9999 only);
    `encode` also takes days since 1970-01-01 as an integer;
  - time-millis (python: datetime.time): milliseconds after midnight, an integer;
  - timestamp-millis / timestamp-micros (python: datetime.datetime in UTC): milli/microseconds
    since the epoch, an integer; `encode` also takes an ISO 8601 / RFC 3339 string with an offset.
Records: `encode` fills missing fields from the schema's defaults and refuses unknown fields.
Union branches are kept exactly (python's own writer would pick the last branch that fits).
Example: py_avro.py encode order.avsc 1 <<<'{"id":"a1","amount":"12.50"}' | py_avro.py decode order.avsc
"""
import datetime
import decimal
import io
import json
import struct
import sys

import avro.io
import avro.schema

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_DATE = datetime.date(1970, 1, 1)


class Branch:
    """A union value together with the index of its branch."""

    def __init__(self, index, value):
        self.index = index
        self.value = value


class BranchReader(avro.io.DatumReader):
    def read_union(self, writers_schema, readers_schema, decoder):
        index = int(decoder.read_long())
        if not 0 <= index < len(writers_schema.schemas):
            raise ValueError(f"union index {index} out of range")
        branch = writers_schema.schemas[index]
        return Branch(index, self.read_data(branch, branch, decoder))


class BranchWriter(avro.io.DatumWriter):
    def write_union(self, writers_schema, datum, encoder):
        encoder.write_long(datum.index)
        self.write_data(writers_schema.schemas[datum.index], datum.value, encoder)


def logical(schema):
    return getattr(schema, "logical_type", None)


def branch_name(schema):
    if isinstance(schema, avro.schema.NamedSchema):
        return schema.fullname
    return schema.type


def is_null_union(schema):
    kinds = [s.type for s in schema.schemas]
    return len(kinds) == 2 and "null" in kinds


def bytes_to_text(data):
    return data.decode("latin-1")


def text_to_bytes(text, where):
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: expected a byte string (code points 0-255)") from None


def to_json(schema, datum):
    """A value read by avro.io -> the JSON form described at the top."""
    if isinstance(schema, avro.schema.UnionSchema):
        branch = schema.schemas[datum.index]
        inner = to_json(branch, datum.value)
        if branch.type == "null" or is_null_union(schema):
            return inner
        return {branch_name(branch): inner}
    kind = logical(schema)
    if isinstance(schema, avro.schema.RecordSchema):
        return {f.name: to_json(f.type, datum[f.name]) for f in schema.fields}
    if isinstance(schema, avro.schema.ArraySchema):
        return [to_json(schema.items, item) for item in datum]
    if isinstance(schema, avro.schema.MapSchema):
        return {key: to_json(schema.values, item) for key, item in datum.items()}
    if isinstance(datum, decimal.Decimal):
        return format(datum, "f")
    if isinstance(datum, datetime.datetime):
        micros = (datum - EPOCH) // datetime.timedelta(microseconds=1)
        return micros // 1000 if kind == "timestamp-millis" else micros
    if isinstance(datum, datetime.date):
        return datum.isoformat()
    if isinstance(datum, datetime.time):
        return ((datum.hour * 60 + datum.minute) * 60 + datum.second) * 1000 + datum.microsecond // 1000
    if isinstance(datum, bytes):
        return bytes_to_text(datum)
    return datum


def to_decimal(value, scale, where):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: expected a decimal number")
    context = decimal.Context(prec=200)
    try:
        number = context.create_decimal(repr(value) if isinstance(value, float) else str(value))
        exact = number.quantize(decimal.Decimal(1).scaleb(-scale), context=context)
    except decimal.InvalidOperation:
        raise ValueError(f"{where}: expected a decimal number") from None
    if exact != number:
        raise ValueError(f"{where}: too many fraction digits (scale {scale})")
    # avro.io writes Decimal("-0.00") as -2 units (it negates a zero): give it a plain zero.
    return exact.copy_abs() if exact == 0 else exact


def to_datum(schema, value, where="", is_default=False):
    """A JSON value in the form described at the top -> the Python value avro.io writes."""
    if isinstance(schema, avro.schema.UnionSchema):
        kinds = [s.type for s in schema.schemas]
        if is_default:  # a union's default belongs to its first branch
            return Branch(0, to_datum(schema.schemas[0], value, where, True))
        if value is None and "null" in kinds:
            return Branch(kinds.index("null"), None)
        if isinstance(value, dict) and len(value) == 1:
            (key, inner), = value.items()
            for index, branch in enumerate(schema.schemas):
                if key in (branch_name(branch), getattr(branch, "name", None)):
                    return Branch(index, to_datum(branch, inner, f"{where}/{key}"))
        if is_null_union(schema):
            index = 1 - kinds.index("null")
            return Branch(index, to_datum(schema.schemas[index], value, where))
        raise ValueError(f"{where}: no union branch matches")
    kind = logical(schema)
    if isinstance(schema, avro.schema.RecordSchema):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected object")
        names = {f.name for f in schema.fields}
        for key in value:
            if key not in names:
                raise ValueError(f"{where}/{key}: unknown field")
        record = {}
        for f in schema.fields:
            if f.name in value:
                record[f.name] = to_datum(f.type, value[f.name], f"{where}/{f.name}", is_default)
            elif f.has_default:
                record[f.name] = to_datum(f.type, f.default, f"{where}/{f.name}", True)
            else:
                raise ValueError(f"{where}/{f.name}: missing required field")
        return record
    if isinstance(schema, avro.schema.ArraySchema):
        return [to_datum(schema.items, item, f"{where}/{i}", is_default) for i, item in enumerate(value)]
    if isinstance(schema, avro.schema.MapSchema):
        return {k: to_datum(schema.values, item, f"{where}/{k}", is_default) for k, item in value.items()}
    if schema.type in ("bytes", "fixed"):
        if kind == "decimal" and not is_default:
            return to_decimal(value, schema.get_prop("scale") or 0, where)
        data = text_to_bytes(value, where)
        if kind == "decimal":  # a default in Avro's JSON form: the raw two's-complement bytes
            unscaled = int.from_bytes(data, "big", signed=True)
            return decimal.Decimal(unscaled).scaleb(-(schema.get_prop("scale") or 0))
        return data
    if kind == "date":
        if isinstance(value, str):
            return datetime.date.fromisoformat(value)
        return EPOCH_DATE + datetime.timedelta(days=value)
    if kind == "time-millis":
        return (datetime.datetime.min + datetime.timedelta(milliseconds=value)).time()
    if kind in ("timestamp-millis", "timestamp-micros"):
        if isinstance(value, str):
            stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if stamp.tzinfo is None:
                raise ValueError(f"{where}: timestamp without an offset")
            return stamp
        unit = "milliseconds" if kind == "timestamp-millis" else "microseconds"
        return EPOCH + datetime.timedelta(**{unit: value})
    if schema.type in ("float", "double") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def fail(message, code=1):
    print(f"py_avro.py: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("decode", "encode") or (argv[1] == "encode") != (len(argv) == 4):
        fail("usage: py_avro.py decode SCHEMA_FILE < framed | py_avro.py encode SCHEMA_FILE ID < json", 2)
    with open(argv[2], encoding="utf-8") as f:
        schema = avro.schema.parse(f.read())
    if argv[1] == "decode":
        data = sys.stdin.buffer.read()
        if len(data) < 5:
            fail(f"not Confluent-framed: {len(data)} bytes, the header alone is 5")
        if data[0] != 0:
            fail(f"not Confluent-framed: magic byte {data[0]}, expected 0")
        (schema_id,) = struct.unpack(">I", data[1:5])
        payload = io.BytesIO(data[5:])
        try:
            datum = BranchReader(schema, schema).read(avro.io.BinaryDecoder(payload))
        except Exception as e:  # avro.io raises many kinds; any of them means "undecodable"
            fail(f"undecodable Avro payload: {type(e).__name__}: {e}")
        left = len(data) - 5 - payload.tell()
        if left:
            fail(f"{left} bytes left over after the Avro value")
        out = {"id": schema_id, "value": to_json(schema, datum)}
        print(json.dumps(out, allow_nan=False))
    else:
        schema_id = int(argv[3])
        if not 0 <= schema_id <= 0xFFFFFFFF:
            fail(f"schema id {schema_id} out of range", 2)
        try:
            datum = to_datum(schema, json.loads(sys.stdin.buffer.read()))
            buf = io.BytesIO()
            BranchWriter(schema).write_data(schema, datum, avro.io.BinaryEncoder(buf))
        except Exception as e:
            fail(f"cannot encode: {type(e).__name__}: {e}")
        sys.stdout.buffer.write(b"\0" + struct.pack(">I", schema_id) + buf.getvalue())


if __name__ == "__main__":
    main(sys.argv)
