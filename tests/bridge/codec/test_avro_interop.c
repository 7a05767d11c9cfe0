/*
 * Interop of the JSON <-> Avro converter (bridge/codec/avro_*.c) with an independent
 * implementation: the Apache Avro Python library (python3-avro), driven through
 * tests/integration/py_avro.py, in the Confluent wire format.
 *
 * (a) we encode and frame, Python decodes; (b) Python encodes and frames, we unframe and decode.
 * Both sides print values in the converter's JSON form (see py_avro.py for how Python's objects
 * are printed: Decimal with exactly `scale` fraction digits, date as YYYY-MM-DD, time-millis and
 * timestamps as integers, bytes/fixed as code points 0..255, uuid as its string), so the values
 * are compared field by field with json_equal. Floats are chosen to be exact in binary32/64, but
 * a float field also carries 0.1, which both sides must widen to the same double. Python writes
 * some negative decimals with a redundant sign byte (-1.28 as ff 80); that is valid Avro and must
 * decode to the same value, so the test pins those bytes too.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "sg_avro.h"
#include "sg_frame.h"

#define TOOL_DEADLINE_MS 30000
#define TOOL_MAX_OUTPUT (1 << 20)

static const char schema_text[] =
    "{\"type\":\"record\",\"name\":\"Every\",\"namespace\":\"interop\",\"fields\":["
    " {\"name\":\"n\",\"type\":\"null\"},"
    " {\"name\":\"b\",\"type\":\"boolean\"},"
    " {\"name\":\"i\",\"type\":\"int\"},"
    " {\"name\":\"l\",\"type\":\"long\"},"
    " {\"name\":\"f\",\"type\":{\"type\":\"array\",\"items\":\"float\"}},"
    " {\"name\":\"d\",\"type\":\"double\"},"
    " {\"name\":\"s\",\"type\":\"string\"},"
    " {\"name\":\"by\",\"type\":\"bytes\"},"
    " {\"name\":\"rec\",\"type\":{\"type\":\"record\",\"name\":\"Inner\",\"fields\":["
    "   {\"name\":\"name\",\"type\":\"string\"},"
    "   {\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "   {\"name\":\"score\",\"type\":{\"type\":\"map\",\"values\":\"double\"}},"
    "   {\"name\":\"deep\",\"type\":{\"type\":\"record\",\"name\":\"Deep\",\"namespace\":\"other\",\"fields\":["
    "     {\"name\":\"x\",\"type\":\"int\"}]}}]}},"
    " {\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    " {\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"int\"}}},"
    " {\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Suit\",\"symbols\":[\"HEARTS\",\"SPADES\",\"CLUBS\"]}},"
    " {\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"MD4\",\"size\":4}},"
    " {\"name\":\"opt\",\"type\":[\"null\",\"string\"]},"
    " {\"name\":\"rev\",\"type\":[\"long\",\"null\"]},"
    " {\"name\":\"u\",\"type\":[\"null\",\"int\",\"string\",\"Inner\",{\"type\":\"array\",\"items\":\"string\"},\"Suit\",\"MD4\"]},"
    " {\"name\":\"amount\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,\"scale\":2}},"
    " {\"name\":\"price\",\"type\":{\"type\":\"fixed\",\"name\":\"Price\",\"size\":8,\"logicalType\":\"decimal\",\"precision\":18,"
    "\"scale\":4}},"
    " {\"name\":\"id\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
    " {\"name\":\"day\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
    " {\"name\":\"tod\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
    " {\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    " {\"name\":\"tsu\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
    " {\"name\":\"maybe_day\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":\"date\"}]},"
    " {\"name\":\"def_i\",\"type\":\"int\",\"default\":42},"
    " {\"name\":\"def_u\",\"type\":[\"string\",\"null\"],\"default\":\"dflt\"},"
    " {\"name\":\"def_rec\",\"type\":\"other.Deep\",\"default\":{\"x\":-1}}"
    "]}";

/* Input (either side accepts these friendlier forms) and the value both sides must print. */
static const struct {
    const char *input, *expected;
} samples[] = {
    {
        "{\"n\":null,\"b\":true,\"i\":-2147483648,\"l\":9007199254740993,\"f\":[1.5,-0.25,0.1],"
        "\"d\":-2.5e-300,\"s\":\"h\\u00e9llo \\u20ac \\ud83d\\ude00\",\"by\":\"\\u0000\\u00ff a\\u0080\","
        "\"rec\":{\"name\":\"Ann\",\"tags\":[\"x\",\"\"],\"score\":{\"math\":0.5,\"art\":-3},\"deep\":{\"x\":7}},"
        "\"arr\":[1,-1,64,9223372036854775807],\"m\":{\"k\":[1,2],\"e\":[]},\"e\":\"SPADES\","
        "\"fx\":\"ab\\u00ff\\u0000\",\"opt\":\"x\",\"rev\":5,\"u\":{\"interop.Inner\":{\"name\":\"B\","
        "\"tags\":[],\"score\":{},\"deep\":{\"x\":0}}},"
        "\"amount\":12.5,\"price\":\"-0.0001\",\"id\":\"123e4567-e89b-12d3-a456-426614174000\","
        "\"day\":\"2024-02-29\",\"tod\":3600001,\"ts\":\"2024-01-02T03:04:05.678Z\","
        "\"tsu\":\"2024-01-02T03:04:05.678901+01:00\",\"maybe_day\":\"1969-12-31\","
        "\"def_i\":1,\"def_u\":null,\"def_rec\":{\"x\":2}}",
        "{\"n\":null,\"b\":true,\"i\":-2147483648,\"l\":9007199254740993,"
        "\"f\":[1.5,-0.25,0.10000000149011612],"
        "\"d\":-2.5e-300,\"s\":\"h\\u00e9llo \\u20ac \\ud83d\\ude00\",\"by\":\"\\u0000\\u00ff a\\u0080\","
        "\"rec\":{\"name\":\"Ann\",\"tags\":[\"x\",\"\"],\"score\":{\"math\":0.5,\"art\":-3.0},\"deep\":{\"x\":7}},"
        "\"arr\":[1,-1,64,9223372036854775807],\"m\":{\"k\":[1,2],\"e\":[]},\"e\":\"SPADES\","
        "\"fx\":\"ab\\u00ff\\u0000\",\"opt\":\"x\",\"rev\":5,\"u\":{\"interop.Inner\":{\"name\":\"B\","
        "\"tags\":[],\"score\":{},\"deep\":{\"x\":0}}},"
        "\"amount\":\"12.50\",\"price\":\"-0.0001\",\"id\":\"123e4567-e89b-12d3-a456-426614174000\","
        "\"day\":\"2024-02-29\",\"tod\":3600001,\"ts\":1704164645678,"
        "\"tsu\":1704161045678901,\"maybe_day\":\"1969-12-31\","
        "\"def_i\":1,\"def_u\":null,\"def_rec\":{\"x\":2}}",
    },
    {
        /* Defaults fill the missing fields; nulls, empties and other union branches. */
        "{\"n\":null,\"b\":false,\"i\":0,\"l\":-9223372036854775808,\"f\":[],\"d\":0,\"s\":\"\",\"by\":\"\","
        "\"rec\":{\"name\":\"\",\"tags\":[],\"score\":{},\"deep\":{\"x\":-2147483648}},"
        "\"arr\":[],\"m\":{},\"e\":\"HEARTS\",\"fx\":\"\\u0000\\u0000\\u0000\\u0000\",\"opt\":null,\"rev\":null,"
        "\"u\":null,\"amount\":\"-1.28\",\"price\":\"99999999999999.9999\","
        "\"id\":\"00000000-0000-0000-0000-00000000000f\",\"day\":0,\"tod\":0,\"ts\":-1,\"tsu\":0,"
        "\"maybe_day\":null}",
        "{\"n\":null,\"b\":false,\"i\":0,\"l\":-9223372036854775808,\"f\":[],\"d\":0.0,\"s\":\"\",\"by\":\"\","
        "\"rec\":{\"name\":\"\",\"tags\":[],\"score\":{},\"deep\":{\"x\":-2147483648}},"
        "\"arr\":[],\"m\":{},\"e\":\"HEARTS\",\"fx\":\"\\u0000\\u0000\\u0000\\u0000\",\"opt\":null,\"rev\":null,"
        "\"u\":null,\"amount\":\"-1.28\",\"price\":\"99999999999999.9999\","
        "\"id\":\"00000000-0000-0000-0000-00000000000f\",\"day\":\"1970-01-01\",\"tod\":0,\"ts\":-1,\"tsu\":0,"
        "\"maybe_day\":null,\"def_i\":42,\"def_u\":\"dflt\",\"def_rec\":{\"x\":-1}}",
    },
    {
        "{\"n\":null,\"b\":true,\"i\":2147483647,\"l\":0,\"f\":[3.4028234663852886e38],\"d\":1e300,"
        "\"s\":\"\\u0000nul\",\"by\":\"\\u0001\",\"rec\":{\"name\":\"n\",\"tags\":[\"a\",\"b\",\"c\"],"
        "\"score\":{\"z\":1e-10},\"deep\":{\"x\":1}},\"arr\":[-9223372036854775808],"
        "\"m\":{\"a\":[-1],\"b\":[0,0]},\"e\":\"CLUBS\",\"fx\":\"wxyz\",\"opt\":\"\",\"rev\":-1,"
        "\"u\":{\"array\":[\"p\",\"q\"]},\"amount\":\"-9999999.99\",\"price\":-7,"
        "\"id\":\"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF\",\"day\":\"0001-01-01\",\"tod\":86399999,"
        "\"ts\":\"1900-01-01T00:00:00Z\",\"tsu\":-1,\"maybe_day\":\"9999-12-31\",\"def_u\":\"y\"}",
        "{\"n\":null,\"b\":true,\"i\":2147483647,\"l\":0,\"f\":[3.4028234663852886e38],\"d\":1e300,"
        "\"s\":\"\\u0000nul\",\"by\":\"\\u0001\",\"rec\":{\"name\":\"n\",\"tags\":[\"a\",\"b\",\"c\"],"
        "\"score\":{\"z\":1e-10},\"deep\":{\"x\":1}},\"arr\":[-9223372036854775808],"
        "\"m\":{\"a\":[-1],\"b\":[0,0]},\"e\":\"CLUBS\",\"fx\":\"wxyz\",\"opt\":\"\",\"rev\":-1,"
        "\"u\":{\"array\":[\"p\",\"q\"]},\"amount\":\"-9999999.99\",\"price\":\"-7.0000\","
        "\"id\":\"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF\",\"day\":\"0001-01-01\",\"tod\":86399999,"
        "\"ts\":-2208988800000,\"tsu\":-1,\"maybe_day\":\"9999-12-31\",\"def_i\":42,\"def_u\":\"y\","
        "\"def_rec\":{\"x\":-1}}",
    },
    {
        /* The remaining union branches. */
        "{\"n\":null,\"b\":true,\"i\":1,\"l\":1,\"f\":[0],\"d\":1,\"s\":\"s\",\"by\":\"b\","
        "\"rec\":{\"name\":\"r\",\"tags\":[],\"score\":{},\"deep\":{\"x\":1}},\"arr\":[],\"m\":{},"
        "\"e\":\"HEARTS\",\"fx\":\"abcd\",\"opt\":null,\"rev\":0,\"u\":{\"int\":-5},\"amount\":0,\"price\":0,"
        "\"id\":\"123e4567-e89b-12d3-a456-426614174000\",\"day\":-719162,\"tod\":1,\"ts\":0,\"tsu\":1,"
        "\"maybe_day\":19000}",
        "{\"n\":null,\"b\":true,\"i\":1,\"l\":1,\"f\":[0.0],\"d\":1.0,\"s\":\"s\",\"by\":\"b\","
        "\"rec\":{\"name\":\"r\",\"tags\":[],\"score\":{},\"deep\":{\"x\":1}},\"arr\":[],\"m\":{},"
        "\"e\":\"HEARTS\",\"fx\":\"abcd\",\"opt\":null,\"rev\":0,\"u\":{\"int\":-5},\"amount\":\"0.00\","
        "\"price\":\"0.0000\",\"id\":\"123e4567-e89b-12d3-a456-426614174000\",\"day\":\"0001-01-01\","
        "\"tod\":1,\"ts\":0,\"tsu\":1,\"maybe_day\":\"2022-01-08\",\"def_i\":42,\"def_u\":\"dflt\","
        "\"def_rec\":{\"x\":-1}}",
    },
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

/* The other union branches, substituted into sample 3's "u". */
static const char *const union_values[][2] = {
    {"{\"string\":\"str\"}", "{\"string\":\"str\"}"},
    {"{\"interop.Suit\":\"CLUBS\"}", "{\"interop.Suit\":\"CLUBS\"}"},
    {"{\"MD4\":\"\\u00ff\\u00fe\\u00fd\\u00fc\"}", "{\"interop.MD4\":\"\\u00ff\\u00fe\\u00fd\\u00fc\"}"},
};

typedef struct {
    char dir[64];
    char schema_path[128];
    sg_avro_schema_t *schema;
} fixture_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (value == NULL)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return value;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Runs py_avro.py with `args` (NULL-terminated, after the script), stdin from `in`, and
 * returns its exit status (-1 if it did not finish within the deadline); *out (owned) gets
 * stdout, NUL-terminated. Python is /usr/bin/python3 (Debian's, which has python3-avro) unless
 * SG_PYTHON says otherwise. */
static int run_tool(fixture_t *fx, const char *const *args, const void *in, size_t inlen, char **out, size_t *outlen)
{
    char in_path[160], out_path[160], script[1024];
    snprintf(in_path, sizeof(in_path), "%s/stdin", fx->dir);
    snprintf(out_path, sizeof(out_path), "%s/stdout", fx->dir);
    const char *root = getenv("SG_SOURCE_ROOT");
    snprintf(script, sizeof(script), "%s/tests/integration/py_avro.py", root != NULL ? root : ".");
    const char *python = getenv("SG_PYTHON") != NULL ? getenv("SG_PYTHON") : "/usr/bin/python3";
    write_file(in_path, in, inlen);
    const char *argv[8] = {python, script};
    size_t argc = 2;
    for (; args[argc - 2] != NULL && argc < 7; argc++)
        argv[argc] = args[argc - 2];
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in_fd = open(in_path, O_RDONLY);
        int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in_fd < 0 || out_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0)
            _exit(126);
        execv(python, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    int64_t deadline = now_ms() + TOOL_DEADLINE_MS;
    pid_t done;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    FILE *fp = fopen(out_path, "rb");
    assert_non_null(fp);
    char *buf = malloc(TOOL_MAX_OUTPUT + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, TOOL_MAX_OUTPUT, fp);
    fclose(fp);
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    snprintf(fx->dir, sizeof(fx->dir), "%.40s/sg-interop-XXXXXX", tmp);
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->schema_path, sizeof(fx->schema_path), "%s/schema.avsc", fx->dir);
    write_file(fx->schema_path, schema_text, strlen(schema_text));
    char err[256] = "";
    fx->schema = sg_avro_schema_parse(schema_text, strlen(schema_text), err, sizeof(err));
    if (fx->schema == NULL)
        fail_msg("schema rejected: %s", err);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char path[160];
    const char *files[] = {"stdin", "stdout", "schema.avsc"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fx->dir, files[i]);
        unlink(path);
    }
    rmdir(fx->dir);
    sg_avro_schema_destroy(fx->schema);
    free(fx);
    return 0;
}

/* Field by field, so that a mismatch names the field and shows both values. */
static void assert_same_fields(const json_t *got, const json_t *want, const char *who)
{
    assert_true(json_is_object(got));
    const char *key;
    json_t *want_value;
    json_object_foreach((json_t *)want, key, want_value)
    {
        json_t *got_value = json_object_get(got, key);
        if (got_value == NULL || !json_equal(got_value, want_value)) {
            char *g = got_value ? json_dumps(got_value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            char *w = json_dumps(want_value, JSON_COMPACT | JSON_ENCODE_ANY);
            fail_msg("%s: field %s is %s, expected %s", who, key, g ? g : "(missing)", w);
        }
    }
    assert_int_equal(json_object_size(got), json_object_size(want));
}

static void encode_ours(fixture_t *fx, const char *input, void **avro, size_t *len)
{
    json_t *value = load(input);
    char path[256] = "", err[256] = "";
    if (sg_avro_from_json(fx->schema, value, avro, len, path, sizeof(path), err, sizeof(err)) != 0)
        fail_msg("our encoder refused the sample at '%s': %s", path, err);
    json_decref(value);
}

/* Python encodes `input` under schema id `id`; returns the framed bytes (owned). */
static char *encode_python(fixture_t *fx, const char *input, const char *id, size_t *len)
{
    char *framed;
    const char *args[] = {"encode", fx->schema_path, id, NULL};
    int rc = run_tool(fx, args, input, strlen(input), &framed, len);
    if (rc != 0)
        fail_msg("py_avro.py encode exited %d (is python3-avro installed?)", rc);
    return framed;
}

/* (a) Our encoder and framing; Python decodes. */
static void check_python_decodes(fixture_t *fx, const char *input, const char *expected, uint32_t id)
{
    void *avro, *framed;
    size_t len;
    encode_ours(fx, input, &avro, &len);
    size_t framed_len = sg_avro_frame(id, avro, len, &framed);
    char *out;
    size_t outlen;
    const char *args[] = {"decode", fx->schema_path, NULL};
    int rc = run_tool(fx, args, framed, framed_len, &out, &outlen);
    if (rc != 0)
        fail_msg("py_avro.py decode exited %d (is python3-avro installed?)", rc);
    json_t *doc = load(out);
    assert_int_equal(json_integer_value(json_object_get(doc, "id")), id);
    json_t *want = load(expected);
    assert_same_fields(json_object_get(doc, "value"), want, "python3-avro decoding ours");
    json_decref(want);
    json_decref(doc);
    free(out);
    free(framed);
    free(avro);
}

/* (b) Python encodes and frames; we unframe and decode. Returns the Avro payload (owned). */
static void *check_we_decode(fixture_t *fx, const char *input, const char *expected, size_t *payload_len_out)
{
    size_t framed_len;
    char *framed = encode_python(fx, input, "305419896", &framed_len); /* 0x12345678 */
    assert_true(framed_len > SG_AVRO_FRAME_HEADER);
    static const uint8_t header[] = {0, 0x12, 0x34, 0x56, 0x78};
    assert_memory_equal(framed, header, sizeof(header));
    uint32_t id = 0;
    const void *payload;
    size_t payload_len;
    assert_int_equal(sg_avro_unframe(framed, framed_len, &id, &payload, &payload_len), 0);
    assert_int_equal(id, 0x12345678u);
    json_t *value = NULL;
    char err[256] = "";
    if (sg_avro_to_json(fx->schema, payload, payload_len, &value, err, sizeof(err)) != 0)
        fail_msg("we cannot decode python3-avro's encoding: %s", err);
    json_t *want = load(expected);
    assert_same_fields(value, want, "ours decoding python3-avro");
    json_decref(want);
    json_decref(value);
    void *copy = malloc(payload_len);
    assert_non_null(copy);
    memcpy(copy, payload, payload_len);
    *payload_len_out = payload_len;
    free(framed);
    return copy;
}

static void test_python_decodes_ours(void **state)
{
    fixture_t *fx = *state;
    for (size_t i = 0; i < NSAMPLES; i++)
        check_python_decodes(fx, samples[i].input, samples[i].expected, (uint32_t)(i == 0 ? 0xfffffffeu : i));
}

static void test_we_decode_python(void **state)
{
    fixture_t *fx = *state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        size_t len;
        void *python_avro = check_we_decode(fx, samples[i].input, samples[i].expected, &len);
        void *ours;
        size_t ours_len;
        encode_ours(fx, samples[i].input, &ours, &ours_len);
        if (i == 1) {
            /* Python spends a sign byte on -1.28 (-128 units: ff 80, where 80 suffices); every
             * other byte is the same. */
            assert_int_equal(len, ours_len + 1);
        } else {
            /* Otherwise the two encoders agree byte for byte. */
            assert_int_equal(len, ours_len);
            assert_memory_equal(python_avro, ours, len);
        }
        free(ours);
        free(python_avro);
    }
}

static void test_union_branches(void **state)
{
    fixture_t *fx = *state;
    for (size_t i = 0; i < sizeof(union_values) / sizeof(union_values[0]); i++) {
        json_t *input = load(samples[3].input), *expected = load(samples[3].expected);
        json_object_set_new(input, "u", load(union_values[i][0]));
        json_object_set_new(expected, "u", load(union_values[i][1]));
        char *in_text = json_dumps(input, JSON_COMPACT);
        char *want_text = json_dumps(expected, JSON_COMPACT);
        check_python_decodes(fx, in_text, want_text, 9);
        size_t len;
        free(check_we_decode(fx, in_text, want_text, &len));
        free(want_text);
        free(in_text);
        json_decref(expected);
        json_decref(input);
    }
}

/* The tool is strict about framing, since the gateway-level tests rely on it. */
static void test_tool_refuses_bad_frames(void **state)
{
    fixture_t *fx = *state;
    void *avro, *framed;
    size_t len;
    encode_ours(fx, samples[1].input, &avro, &len);
    size_t framed_len = sg_avro_frame(1, avro, len, &framed);
    char *out;
    size_t outlen;
    const char *args[] = {"decode", fx->schema_path, NULL};

    ((uint8_t *)framed)[0] = 1; /* bad magic */
    assert_int_equal(run_tool(fx, args, framed, framed_len, &out, &outlen), 1);
    assert_int_equal(outlen, 0);
    free(out);
    ((uint8_t *)framed)[0] = 0;
    assert_int_equal(run_tool(fx, args, framed, 4, &out, &outlen), 1); /* short header */
    free(out);
    assert_int_equal(run_tool(fx, args, framed, framed_len - 1, &out, &outlen), 1); /* truncated */
    free(out);
    uint8_t *longer = malloc(framed_len + 1);
    assert_non_null(longer);
    memcpy(longer, framed, framed_len);
    longer[framed_len] = 0;
    assert_int_equal(run_tool(fx, args, longer, framed_len + 1, &out, &outlen), 1); /* trailing */
    free(out);
    assert_int_equal(run_tool(fx, args, avro, len, &out, &outlen), 1); /* not framed at all */
    free(out);
    /* And the intact frame does decode, so the refusals above are about the frame. */
    assert_int_equal(run_tool(fx, args, framed, framed_len, &out, &outlen), 0);
    free(out);
    free(longer);
    free(framed);
    free(avro);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_python_decodes_ours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_we_decode_python, setup, teardown),
        cmocka_unit_test_setup_teardown(test_union_branches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_refuses_bad_frames, setup, teardown),
    };
    return cmocka_run_group_tests_name("codec-avro-interop", tests, NULL, NULL);
}
