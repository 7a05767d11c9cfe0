/*
 * Consistency tokens (queries/README.md; README: "HTTP API: tables"): an in-memory set of (topic, partition) -> (offset, stream
 * time) and its one canonical text form.
 *
 * The token is a single array of entries kept sorted by (topic bytes, partition), so lookups are
 * binary searches, merges are linear walks and encoding is a straight scan with no sorting. Topic
 * names are interned per token: every entry of a topic points at one heap string, and because a
 * topic's entries are contiguous the string is freed once per run. The size of the binary form is
 * maintained on every change so that the limits (SG_TOKEN_MAX_ENTRIES, SG_TOKEN_MAX_TEXT) are
 * enforced when the token grows: every token we hand out can be decoded again.
 *
 * Binary form (then base64url, no padding):
 *   u8      version (SG_TOKEN_VERSION)
 *   varint  topic count
 *   per topic, strictly ascending by name bytes:
 *     varint  name length (1..249), name bytes ([a-zA-Z0-9._-])
 *     varint  partition count (>= 1)
 *     per partition, strictly ascending: varint partition, varint offset, varint stream_time_ms
 *   u32     CRC-32C (Castagnoli) of every preceding byte, little-endian
 * Varints are unsigned LEB128 (7 bits per byte, low group first), minimal, at most 10 bytes.
 * The decoder rejects everything that is not exactly what the encoder would produce.
 */
#include "sg_token.h"

#include "queries_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SG_TOKEN_CHECKSUM_LEN 4
/* Version byte + an empty topic count + checksum: the smallest well-formed binary token. */
#define SG_TOKEN_MIN_WIRE (1 + 1 + SG_TOKEN_CHECKSUM_LEN)
/* Longest binary form whose base64url text still fits SG_TOKEN_MAX_TEXT. */
#define SG_TOKEN_MAX_WIRE ((size_t)SG_TOKEN_MAX_TEXT / 4 * 3)
#define SG_TOKEN_VARINT_MAX 10

typedef struct {
    const char *topic; /* interned: shared by the whole run of this topic's entries */
    int32_t partition;
    int64_t offset;
    int64_t stream_time_ms;
} sg_token_entry_t;

struct st_sg_token_t {
    sg_token_entry_t *entries; /* sorted by (topic bytes, partition), unique */
    size_t count;
    size_t capacity;
    size_t topic_count;
    size_t wire_len; /* bytes of the binary form, checksum included */
};

static size_t sg_token_varint_len(uint64_t value)
{
    size_t len = 1;
    while (value >= 0x80) {
        value >>= 7;
        len++;
    }
    return len;
}

static size_t sg_token_put_varint(uint8_t *out, uint64_t value)
{
    size_t len = 0;
    while (value >= 0x80) {
        out[len++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    out[len++] = (uint8_t)value;
    return len;
}

/* Table-driven (one byte per step; the table is made once): every table read encodes a token,
 * and the bitwise form was 5% of a point read. CRC-32C catches every burst of up to 32 bits, so
 * any single mangled base64 character (6 bits) is always detected. */
static uint32_t sg_token_crc_table[256];
static pthread_once_t sg_token_crc_once = PTHREAD_ONCE_INIT;

static void sg_token_crc_init(void)
{
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
        sg_token_crc_table[byte] = crc;
    }
}

static uint32_t sg_token_crc32c(const uint8_t *data, size_t len)
{
    pthread_once(&sg_token_crc_once, sg_token_crc_init);
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        crc = (crc >> 8) ^ sg_token_crc_table[(crc ^ data[i]) & 0xffu];
    return ~crc;
}

static bool sg_token_topic_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Whether `topic` is a name Kafka would accept; returns its length in *len. */
static bool sg_token_topic_ok(const char *topic, size_t *len)
{
    if (topic == NULL)
        return false;
    size_t n = 0;
    while (topic[n] != '\0') {
        if (n == SG_TOKEN_MAX_TOPIC_LEN || !sg_token_topic_char_ok((unsigned char)topic[n]))
            return false;
        n++;
    }
    *len = n;
    return n > 0;
}

static size_t sg_token_entry_wire_len(const sg_token_entry_t *entry)
{
    return sg_token_varint_len((uint64_t)entry->partition) + sg_token_varint_len((uint64_t)entry->offset) +
           sg_token_varint_len((uint64_t)entry->stream_time_ms);
}

/* Length of a topic header: name length, name, partition count. */
static size_t sg_token_topic_wire_len(size_t name_len, size_t partitions)
{
    return sg_token_varint_len(name_len) + name_len + sg_token_varint_len(partitions);
}

static size_t sg_token_run_end(const sg_token_entry_t *entries, size_t count, size_t start)
{
    size_t end = start + 1;
    while (end < count && entries[end].topic == entries[start].topic)
        end++;
    return end;
}

/* Full recomputation of the binary length and topic count; used where a whole array is built at
 * once (merge). Runs are recognised by pointer identity, which interning guarantees. */
static size_t sg_token_wire_len_of(const sg_token_entry_t *entries, size_t count, size_t *topic_count)
{
    size_t topics = 0;
    size_t len = 0;
    for (size_t start = 0; start < count;) {
        size_t end = sg_token_run_end(entries, count, start);
        len += sg_token_topic_wire_len(strlen(entries[start].topic), end - start);
        for (size_t i = start; i < end; i++)
            len += sg_token_entry_wire_len(&entries[i]);
        topics++;
        start = end;
    }
    *topic_count = topics;
    return 1 + sg_token_varint_len(topics) + len + SG_TOKEN_CHECKSUM_LEN;
}

static int sg_token_cmp(const sg_token_entry_t *entry, const char *topic, int32_t partition)
{
    int c = strcmp(entry->topic, topic);
    if (c != 0)
        return c;
    return (entry->partition > partition) - (entry->partition < partition);
}

/* Index of the first entry >= (topic, partition); *found says whether it is equal. */
static size_t sg_token_search(const sg_token_t *token, const char *topic, int32_t partition, bool *found)
{
    size_t lo = 0, hi = token->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sg_token_cmp(&token->entries[mid], topic, partition) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < token->count && sg_token_cmp(&token->entries[lo], topic, partition) == 0;
    return lo;
}

static void sg_token_reserve(sg_token_t *token, size_t want)
{
    if (want <= token->capacity)
        return;
    size_t capacity = token->capacity != 0 ? token->capacity : 8;
    while (capacity < want)
        capacity *= 2;
    if (capacity > SG_TOKEN_MAX_ENTRIES && want <= SG_TOKEN_MAX_ENTRIES)
        capacity = SG_TOKEN_MAX_ENTRIES;
    token->entries = sg_realloc(token->entries, capacity * sizeof(*token->entries));
    token->capacity = capacity;
}

sg_token_t *sg_token_create(void)
{
    sg_token_t *token = sg_calloc(1, sizeof(*token));
    token->wire_len = SG_TOKEN_MIN_WIRE;
    return token;
}

void sg_token_destroy(sg_token_t *token)
{
    if (token == NULL)
        return;
    for (size_t i = 0; i < token->count; i++) {
        if (i == 0 || token->entries[i].topic != token->entries[i - 1].topic)
            free((char *)token->entries[i].topic);
    }
    free(token->entries);
    free(token);
}

sg_token_t *sg_token_dup(const sg_token_t *token)
{
    sg_token_t *copy = sg_token_create();
    sg_token_reserve(copy, token->count);
    if (token->count > 0) /* an empty token has no entries array (memcpy from NULL is undefined) */
        memcpy(copy->entries, token->entries, token->count * sizeof(*token->entries));
    for (size_t start = 0; start < token->count;) {
        size_t end = sg_token_run_end(token->entries, token->count, start);
        const char *topic = sg_memdup(token->entries[start].topic, strlen(token->entries[start].topic));
        for (size_t i = start; i < end; i++)
            copy->entries[i].topic = topic;
        start = end;
    }
    copy->count = token->count;
    copy->topic_count = token->topic_count;
    copy->wire_len = token->wire_len;
    return copy;
}

static int64_t sg_token_max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

int sg_token_advance(sg_token_t *token, const char *topic, int32_t partition, int64_t offset, int64_t stream_time_ms)
{
    size_t topic_len;
    if (!sg_token_topic_ok(topic, &topic_len) || partition < 0 || offset < 0 || stream_time_ms < 0)
        return -1;

    bool found;
    size_t pos = sg_token_search(token, topic, partition, &found);
    sg_token_entry_t next = {topic, partition, offset, stream_time_ms};
    size_t wire_len = token->wire_len;

    if (found) {
        sg_token_entry_t *entry = &token->entries[pos];
        next.topic = entry->topic;
        next.offset = sg_token_max64(entry->offset, offset);
        next.stream_time_ms = sg_token_max64(entry->stream_time_ms, stream_time_ms);
        /* Fields only grow, so the encoding never shrinks and this cannot underflow. */
        wire_len = wire_len - sg_token_entry_wire_len(entry) + sg_token_entry_wire_len(&next);
        if (wire_len > SG_TOKEN_MAX_WIRE)
            return -1;
        *entry = next;
        token->wire_len = wire_len;
        return 0;
    }

    if (token->count >= SG_TOKEN_MAX_ENTRIES)
        return -1;

    /* The topic's run, if any, touches the insertion point from one side or the other. */
    const char *interned = NULL;
    size_t run_start = pos, run_end = pos;
    if (pos > 0 && strcmp(token->entries[pos - 1].topic, topic) == 0)
        interned = token->entries[pos - 1].topic;
    else if (pos < token->count && strcmp(token->entries[pos].topic, topic) == 0)
        interned = token->entries[pos].topic;
    if (interned != NULL) {
        while (run_start > 0 && token->entries[run_start - 1].topic == interned)
            run_start--;
        while (run_end < token->count && token->entries[run_end].topic == interned)
            run_end++;
        size_t partitions = run_end - run_start;
        wire_len += sg_token_varint_len(partitions + 1) - sg_token_varint_len(partitions);
    } else {
        wire_len += sg_token_varint_len(token->topic_count + 1) - sg_token_varint_len(token->topic_count);
        wire_len += sg_token_topic_wire_len(topic_len, 1);
    }
    wire_len += sg_token_entry_wire_len(&next);
    if (wire_len > SG_TOKEN_MAX_WIRE)
        return -1;

    if (interned == NULL) {
        interned = sg_memdup(topic, topic_len);
        token->topic_count++;
    }
    next.topic = interned;
    sg_token_reserve(token, token->count + 1);
    memmove(&token->entries[pos + 1], &token->entries[pos], (token->count - pos) * sizeof(*token->entries));
    token->entries[pos] = next;
    token->count++;
    token->wire_len = wire_len;
    return 0;
}

int sg_token_merge(sg_token_t *dst, const sg_token_t *src)
{
    size_t cap = dst->count + src->count;
    sg_token_entry_t *merged = sg_reallocarray(NULL, cap, sizeof(*merged));
    /* Entries whose topic pointer still belongs to src: copied only once the merge is known to
     * fit, so a rejected merge leaves dst untouched and allocates nothing that outlives it. */
    bool *borrowed = sg_reallocarray(NULL, cap, sizeof(*borrowed));
    size_t n = 0, i = 0, j = 0;

    while (i < dst->count || j < src->count) {
        int c;
        if (i == dst->count)
            c = 1;
        else if (j == src->count)
            c = -1;
        else
            c = sg_token_cmp(&dst->entries[i], src->entries[j].topic, src->entries[j].partition);

        if (c < 0) {
            merged[n] = dst->entries[i++];
            borrowed[n] = false;
        } else if (c == 0) {
            merged[n] = dst->entries[i];
            merged[n].offset = sg_token_max64(dst->entries[i].offset, src->entries[j].offset);
            merged[n].stream_time_ms = sg_token_max64(dst->entries[i].stream_time_ms, src->entries[j].stream_time_ms);
            borrowed[n] = false;
            i++, j++;
        } else {
            /* A topic dst already has is either the run just emitted or starts at dst[i]. */
            merged[n] = src->entries[j++];
            borrowed[n] = true;
            if (n > 0 && strcmp(merged[n - 1].topic, merged[n].topic) == 0) {
                merged[n].topic = merged[n - 1].topic;
                borrowed[n] = borrowed[n - 1];
            } else if (i < dst->count && strcmp(dst->entries[i].topic, merged[n].topic) == 0) {
                merged[n].topic = dst->entries[i].topic;
                borrowed[n] = false;
            }
        }
        n++;
    }

    size_t topic_count;
    size_t wire_len = sg_token_wire_len_of(merged, n, &topic_count);
    if (n > SG_TOKEN_MAX_ENTRIES || wire_len > SG_TOKEN_MAX_WIRE) {
        free(merged);
        free(borrowed);
        return -1;
    }
    for (size_t start = 0; start < n;) {
        size_t end = sg_token_run_end(merged, n, start);
        if (borrowed[start]) {
            const char *topic = sg_memdup(merged[start].topic, strlen(merged[start].topic));
            for (size_t k = start; k < end; k++)
                merged[k].topic = topic;
        }
        start = end;
    }
    free(borrowed);
    free(dst->entries);
    dst->entries = merged;
    dst->count = n;
    dst->capacity = cap;
    dst->topic_count = topic_count;
    dst->wire_len = wire_len;
    return 0;
}

int sg_token_get(const sg_token_t *token, const char *topic, int32_t partition, int64_t *offset, int64_t *stream_time_ms)
{
    if (topic == NULL)
        return -1;
    bool found;
    size_t pos = sg_token_search(token, topic, partition, &found);
    if (!found)
        return -1;
    if (offset != NULL)
        *offset = token->entries[pos].offset;
    if (stream_time_ms != NULL)
        *stream_time_ms = token->entries[pos].stream_time_ms;
    return 0;
}

size_t sg_token_count(const sg_token_t *token)
{
    return token->count;
}

void sg_token_entry(const sg_token_t *token, size_t i, const char **topic, int32_t *partition, int64_t *offset,
                    int64_t *stream_time_ms)
{
    assert(i < token->count);
    const sg_token_entry_t *entry = &token->entries[i];
    if (topic != NULL)
        *topic = entry->topic;
    if (partition != NULL)
        *partition = entry->partition;
    if (offset != NULL)
        *offset = entry->offset;
    if (stream_time_ms != NULL)
        *stream_time_ms = entry->stream_time_ms;
}

int sg_token_covers(const sg_token_t *view, const sg_token_t *want, int (*topic_filter)(const char *topic, void *arg), void *arg)
{
    bool wanted = false;
    for (size_t i = 0; i < want->count; i++) {
        const sg_token_entry_t *entry = &want->entries[i];
        /* The filter is asked once per topic, not once per partition. */
        if (i == 0 || entry->topic != want->entries[i - 1].topic)
            wanted = topic_filter == NULL || topic_filter(entry->topic, arg);
        if (!wanted)
            continue;
        bool found;
        size_t pos = sg_token_search(view, entry->topic, entry->partition, &found);
        if (!found || view->entries[pos].offset < entry->offset)
            return 0;
    }
    return 1;
}

/* Appends the checksum to wire[0..n) and writes the base64url text; returns the text length. */
static size_t sg_token_finish_text(uint8_t *wire, size_t n, char *buf, size_t buflen)
{
    uint32_t crc = sg_token_crc32c(wire, n);
    for (int k = 0; k < SG_TOKEN_CHECKSUM_LEN; k++)
        wire[n++] = (uint8_t)(crc >> (8 * k));
    size_t text_len = sg_b64url_encoded_len(n);
    if (text_len < buflen)
        return sg_b64url_encode(wire, n, buf);
    if (buflen > 0) { /* truncated, as snprintf would */
        char *full = sg_malloc(text_len + 1);
        sg_b64url_encode(wire, n, full);
        memcpy(buf, full, buflen - 1);
        buf[buflen - 1] = '\0';
        free(full);
    }
    return text_len;
}

size_t sg_token_encode(const sg_token_t *token, char *buf, size_t buflen)
{
    uint8_t *wire = sg_malloc(token->wire_len);
    size_t n = 0;
    wire[n++] = SG_TOKEN_VERSION;
    n += sg_token_put_varint(wire + n, token->topic_count);
    for (size_t start = 0; start < token->count;) {
        size_t end = sg_token_run_end(token->entries, token->count, start);
        size_t name_len = strlen(token->entries[start].topic);
        n += sg_token_put_varint(wire + n, name_len);
        memcpy(wire + n, token->entries[start].topic, name_len);
        n += name_len;
        n += sg_token_put_varint(wire + n, end - start);
        for (size_t i = start; i < end; i++) {
            n += sg_token_put_varint(wire + n, (uint64_t)token->entries[i].partition);
            n += sg_token_put_varint(wire + n, (uint64_t)token->entries[i].offset);
            n += sg_token_put_varint(wire + n, (uint64_t)token->entries[i].stream_time_ms);
        }
        start = end;
    }
    assert(n + SG_TOKEN_CHECKSUM_LEN == token->wire_len);
    size_t text_len = sg_token_finish_text(wire, n, buf, buflen);
    free(wire);
    return text_len;
}

size_t sg_token_encode_one(const char *topic, int32_t partition, int64_t offset, int64_t stream_time_ms, char *buf, size_t buflen)
{
    size_t name_len;
    if (partition < 0 || offset < 0 || stream_time_ms < 0 || !sg_token_topic_ok(topic, &name_len))
        return 0;
    /* version + 2 counts + name length + name + 3 values + checksum, all varints <= 10 bytes */
    uint8_t wire[1 + 10 + 10 + SG_TOKEN_MAX_TOPIC_LEN + 10 + 3 * 10 + SG_TOKEN_CHECKSUM_LEN];
    size_t n = 0;
    wire[n++] = SG_TOKEN_VERSION;
    n += sg_token_put_varint(wire + n, 1);
    n += sg_token_put_varint(wire + n, name_len);
    memcpy(wire + n, topic, name_len);
    n += name_len;
    n += sg_token_put_varint(wire + n, 1);
    n += sg_token_put_varint(wire + n, (uint64_t)partition);
    n += sg_token_put_varint(wire + n, (uint64_t)offset);
    n += sg_token_put_varint(wire + n, (uint64_t)stream_time_ms);
    return sg_token_finish_text(wire, n, buf, buflen);
}

/* Decodes strict base64url (no padding, zero trailing bits) into a new buffer. */
static uint8_t *sg_token_b64_decode(const char *text, size_t len, size_t *out_len, char *err, size_t errlen)
{
    char why[128];
    uint8_t *wire = sg_malloc(len / 4 * 3 + 2);
    long n = sg_b64url_decode(text, len, wire, why, sizeof(why));
    if (n < 0) {
        free(wire);
        sg_errf(err, errlen, "token %s", why);
        return NULL;
    }
    *out_len = (size_t)n;
    return wire;
}

typedef struct {
    const uint8_t *data;
    size_t pos;
    size_t end;
    char *err;
    size_t errlen;
} sg_token_reader_t;

static int sg_token_read_varint(sg_token_reader_t *reader, uint64_t *out, const char *what)
{
    uint64_t value = 0;
    for (int i = 0; i < SG_TOKEN_VARINT_MAX; i++) {
        if (reader->pos >= reader->end) {
            sg_errf(reader->err, reader->errlen, "truncated token: %s ends early", what);
            return -1;
        }
        uint8_t byte = reader->data[reader->pos++];
        if (i == SG_TOKEN_VARINT_MAX - 1) {
            if (byte & 0x80) {
                sg_errf(reader->err, reader->errlen, "%s: varint longer than %d bytes", what, SG_TOKEN_VARINT_MAX);
                return -1;
            }
            if (byte > 1) {
                sg_errf(reader->err, reader->errlen, "%s: varint overflows 64 bits", what);
                return -1;
            }
        }
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) {
            if (byte == 0 && i > 0) {
                sg_errf(reader->err, reader->errlen, "%s: non-minimal varint", what);
                return -1;
            }
            *out = value;
            return 0;
        }
    }
    abort(); /* unreachable: the last iteration always returns */
}

/* Parses the body (between version byte and checksum) into `token`; 0 or -1 with err set. */
static int sg_token_parse(sg_token_t *token, sg_token_reader_t *reader)
{
    uint64_t topic_count;
    if (sg_token_read_varint(reader, &topic_count, "topic count") != 0)
        return -1;
    /* Every topic has at least one partition, so this also bounds the work below. */
    if (topic_count > SG_TOKEN_MAX_ENTRIES) {
        sg_errf(reader->err, reader->errlen, "too many topics (%" PRIu64 ", limit %d)", topic_count, SG_TOKEN_MAX_ENTRIES);
        return -1;
    }
    const char *prev_topic = NULL;
    for (uint64_t t = 0; t < topic_count; t++) {
        uint64_t name_len;
        if (sg_token_read_varint(reader, &name_len, "topic name length") != 0)
            return -1;
        if (name_len == 0) {
            sg_errf(reader->err, reader->errlen, "empty topic name");
            return -1;
        }
        if (name_len > SG_TOKEN_MAX_TOPIC_LEN) {
            sg_errf(reader->err, reader->errlen, "topic name longer than %d bytes", SG_TOKEN_MAX_TOPIC_LEN);
            return -1;
        }
        if (reader->end - reader->pos < name_len) {
            sg_errf(reader->err, reader->errlen, "truncated token: topic name ends early");
            return -1;
        }
        const char *name = (const char *)reader->data + reader->pos;
        for (size_t k = 0; k < name_len; k++) {
            if (!sg_token_topic_char_ok((unsigned char)name[k])) {
                sg_errf(reader->err, reader->errlen, "invalid character 0x%02x in topic name", (unsigned char)name[k]);
                return -1;
            }
        }
        reader->pos += name_len;
        /* Valid names contain no NUL, so strcmp order is byte order. */
        char *topic = sg_memdup(name, name_len);
        if (prev_topic != NULL) {
            int c = strcmp(prev_topic, topic);
            if (c >= 0) {
                sg_errf(reader->err, reader->errlen, c == 0 ? "duplicate topic %s" : "topic %s out of order", topic);
                free(topic);
                return -1;
            }
        }
        uint64_t partitions;
        if (sg_token_read_varint(reader, &partitions, "partition count") != 0) {
            free(topic);
            return -1;
        }
        if (partitions == 0) {
            sg_errf(reader->err, reader->errlen, "topic %s has no partitions", topic);
            free(topic);
            return -1;
        }
        if (partitions > SG_TOKEN_MAX_ENTRIES - token->count) {
            sg_errf(reader->err, reader->errlen, "too many entries (limit %d)", SG_TOKEN_MAX_ENTRIES);
            free(topic);
            return -1;
        }
        sg_token_reserve(token, token->count + (size_t)partitions);
        /* From the first appended entry on, the token owns `topic` and frees it on error. */
        bool owned = false;
        int64_t prev_partition = -1;
        for (uint64_t p = 0; p < partitions; p++) {
            uint64_t partition, offset, stream_time;
            if (sg_token_read_varint(reader, &partition, "partition") != 0)
                goto fail;
            if (partition > INT32_MAX) {
                sg_errf(reader->err, reader->errlen, "partition %" PRIu64 " out of range", partition);
                goto fail;
            }
            if ((int64_t)partition <= prev_partition) {
                sg_errf(reader->err, reader->errlen,
                        (int64_t)partition == prev_partition ? "duplicate partition %s/%" PRIu64
                                                             : "partition %s/%" PRIu64 " out of order",
                        topic, partition);
                goto fail;
            }
            if (sg_token_read_varint(reader, &offset, "offset") != 0)
                goto fail;
            if (offset > INT64_MAX) {
                sg_errf(reader->err, reader->errlen, "offset of %s/%" PRIu64 " out of range", topic, partition);
                goto fail;
            }
            if (sg_token_read_varint(reader, &stream_time, "stream time") != 0)
                goto fail;
            if (stream_time > INT64_MAX) {
                sg_errf(reader->err, reader->errlen, "stream time of %s/%" PRIu64 " out of range", topic, partition);
                goto fail;
            }
            token->entries[token->count++] = (sg_token_entry_t){topic, (int32_t)partition, (int64_t)offset, (int64_t)stream_time};
            owned = true;
            prev_partition = (int64_t)partition;
        }
        token->topic_count++;
        prev_topic = topic;
        continue;
    fail:
        if (!owned)
            free(topic);
        return -1;
    }
    if (reader->pos != reader->end) {
        sg_errf(reader->err, reader->errlen, "%zu trailing bytes after the last topic", reader->end - reader->pos);
        return -1;
    }
    return 0;
}

sg_token_t *sg_token_decode(const char *text, size_t len, char *err, size_t errlen)
{
    if (text == NULL || len == 0) {
        sg_errf(err, errlen, "empty token");
        return NULL;
    }
    if (len > SG_TOKEN_MAX_TEXT) {
        sg_errf(err, errlen, "token longer than %d characters", SG_TOKEN_MAX_TEXT);
        return NULL;
    }
    size_t wire_len;
    uint8_t *wire = sg_token_b64_decode(text, len, &wire_len, err, errlen);
    if (wire == NULL)
        return NULL;

    sg_token_t *token = NULL;
    /* Version first: a future version may change everything after it, checksum included. */
    if (wire[0] != SG_TOKEN_VERSION) {
        sg_errf(err, errlen, "unsupported token version %u", wire[0]);
        goto out;
    }
    if (wire_len < SG_TOKEN_MIN_WIRE) {
        sg_errf(err, errlen, "truncated token (%zu bytes)", wire_len);
        goto out;
    }
    size_t body_end = wire_len - SG_TOKEN_CHECKSUM_LEN;
    uint32_t stored = 0;
    for (int k = 0; k < SG_TOKEN_CHECKSUM_LEN; k++)
        stored |= (uint32_t)wire[body_end + (size_t)k] << (8 * k);
    if (stored != sg_token_crc32c(wire, body_end)) {
        sg_errf(err, errlen, "token checksum mismatch");
        goto out;
    }

    token = sg_token_create();
    sg_token_reader_t reader = {wire, 1, body_end, err, errlen};
    if (sg_token_parse(token, &reader) != 0) {
        sg_token_destroy(token);
        token = NULL;
        goto out;
    }
    /* Canonical input means our own bookkeeping reproduces the exact length we were given. */
    token->wire_len = wire_len;
#ifndef NDEBUG
    size_t topics_check;
    assert(sg_token_wire_len_of(token->entries, token->count, &topics_check) == wire_len);
    assert(topics_check == token->topic_count);
#endif
out:
    free(wire);
    return token;
}
