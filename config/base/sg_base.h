/*
 * The base every module builds on: one out-of-memory policy, the clocks, error formatting into
 * (char *err, size_t errlen), base64url (RFC 4648 §5, unpadded) and a keyed hash (SipHash-1-3).
 * No dependencies beyond libc.
 *
 * Out of memory aborts in sg_oom() and nowhere else: a gateway that cannot allocate a few bytes
 * for a token or a record cannot do anything useful, and unwinding every caller for it would hide
 * the errors that matter. Any thread may call anything here.
 */
#ifndef SG_BASE_H
#define SG_BASE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SG_PRINTF(fmt, args)
#endif

#define SG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/** Logs "out of memory" and aborts. */
_Noreturn void sg_oom(void);

/** malloc/calloc/realloc that never return NULL (a zero size allocates one byte). */
void *sg_malloc(size_t size);
void *sg_calloc(size_t count, size_t size);
void *sg_realloc(void *ptr, size_t size);
/** Returns an owned copy of the NUL-terminated `s`. */
char *sg_strdup(const char *s);
/** realloc of an array of count elements of size bytes; aborts on overflow as on failure. */
void *sg_reallocarray(void *ptr, size_t count, size_t size);
/** Returns an owned copy of `len` bytes plus a terminating NUL. */
char *sg_memdup(const void *data, size_t len);

/** Formats into err; a NULL err or a zero errlen formats nothing. Returns -1, so that a failing
 * function can `return sg_errf(err, errlen, ...)`. */
int sg_errf(char *err, size_t errlen, const char *fmt, ...) SG_PRINTF(3, 4);

/** Wall-clock time, ms since the Unix epoch (record timestamps, retention). */
int64_t sg_now_ms(void);
/** Monotonic time in ms and in µs (deadlines and durations). */
int64_t sg_mono_ms(void);
int64_t sg_mono_us(void);
/** Sleeps `ms` milliseconds (restarted after signals). */
void sg_sleep_ms(int64_t ms);

/** Names the calling thread, as top -H, ps -L, gdb and perf show it (Linux keeps 15 bytes). */
void sg_thread_name(const char *name);

/** Fills buf with bytes from the kernel's random source. Returns 0 or -1 (errno set). */
int sg_random_bytes(void *buf, size_t len);

/** The base64url alphabet, and a character's 6-bit value or -1. */
extern const char sg_b64url_alphabet[65];
int sg_b64url_value(unsigned char c);
/** Length of the unpadded base64url text of `len` bytes. */
static inline size_t sg_b64url_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}
/** Writes the unpadded text of in[0..len) to out (room for sg_b64url_encoded_len(len) + 1,
 * NUL-terminated). Returns the text length. */
size_t sg_b64url_encode(const void *in, size_t len, char *out);
/** Decodes canonical unpadded base64url (no padding, no stray characters, zero trailing bits)
 * into out (room for len * 3 / 4 bytes). Returns the byte count, or -1 with err. */
long sg_b64url_decode(const char *in, size_t len, void *out, char *err, size_t errlen);

/* A SipHash key: bytes 0..7 and 8..15 read as little-endian words. */
typedef struct st_sg_sipkey_t {
    uint64_t k0, k1;
} sg_sipkey_t;
/** SipHash-1-3 of data[0..len) under key: a keyed hash for tables of client-chosen keys (not a
 * MAC; the table must still compare the keys). The output bytes read little-endian, as the
 * reference emits them. */
uint64_t sg_siphash13(const sg_sipkey_t *key, const void *data, size_t len);
/** SipHash-2-4 of data[0..len) under key: the MAC strength (request ids), same output form. */
uint64_t sg_siphash24(const sg_sipkey_t *key, const void *data, size_t len);

#endif
