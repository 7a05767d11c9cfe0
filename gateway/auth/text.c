/*
 * The HTTP text of authentication, as pure functions the gateway calls with header values:
 * reading Authorization (RFC 6750 §2.1) and Cookie (RFC 6265 §4.2) values, and writing
 * WWW-Authenticate challenges (RFC 6750 §3). No allocation, no state.
 */
#include "sg_auth.h"

#include "auth_int.h"

#include <stdio.h>
#include <string.h>

/* Appends to a bounded buffer as snprintf would: the length counts what did not fit too. */
typedef struct st_text_t {
    char *buf;
    size_t size, len;
} text_t;

static void put(text_t *out, const char *text, size_t len)
{
    if (out->len + 1 < out->size) {
        size_t room = out->size - 1 - out->len;
        memcpy(out->buf + out->len, text, len < room ? len : room);
    }
    out->len += len;
    if (out->size > 0)
        out->buf[out->len < out->size ? out->len : out->size - 1] = '\0';
}

static void puts_text(text_t *out, const char *text)
{
    put(out, text, strlen(text));
}

/* RFC 6750 §3: error_description and scope values may hold %x20-21 / %x23-5B / %x5D-7E only. */
static void put_quoted_safe(text_t *out, const char *text, bool allow_space)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        char ch = (char)*p;
        if (*p == '"')
            ch = '\'';
        else if (*p == '\\')
            ch = '/';
        else if (*p < 0x20 || *p > 0x7e || (*p == ' ' && !allow_space))
            ch = '?';
        put(out, &ch, 1);
    }
}

const char *sg_auth_cause_name(sg_auth_cause_t cause)
{
    switch (cause) {
    case SG_AUTH_OK: return "ok";
    case SG_AUTH_MISSING_CREDENTIAL: return "missing-credential";
    case SG_AUTH_MALFORMED: return "malformed";
    case SG_AUTH_TOO_LARGE: return "too-large";
    case SG_AUTH_ALGORITHM_NOT_ALLOWED: return "algorithm-not-allowed";
    case SG_AUTH_UNKNOWN_KEY_ID: return "unknown-key-id";
    case SG_AUTH_BAD_SIGNATURE: return "bad-signature";
    case SG_AUTH_EXPIRED: return "expired";
    case SG_AUTH_NOT_YET_VALID: return "not-yet-valid";
    case SG_AUTH_WRONG_ISSUER: return "wrong-issuer";
    case SG_AUTH_WRONG_AUDIENCE: return "wrong-audience";
    case SG_AUTH_UNKNOWN_API_KEY: return "unknown-api-key";
    case SG_AUTH_UNSUPPORTED_CREDENTIAL: return "unsupported-credential";
    case SG_AUTH_KEYS_UNAVAILABLE: return "keys-unavailable";
    }
    return "unknown";
}

size_t sg_auth_www_authenticate(sg_auth_cause_t cause, const char *description, char *buf, size_t size)
{
    text_t out = {.buf = buf, .size = size};
    if (size > 0)
        buf[0] = '\0';
    puts_text(&out, "Bearer");
    if (cause == SG_AUTH_MISSING_CREDENTIAL) /* RFC 6750 §3.1: no error code without credentials */
        return out.len;
    puts_text(&out, " error=\"invalid_token\", error_description=\"");
    put_quoted_safe(&out, description != NULL ? description : sg_auth_cause_name(cause), true);
    puts_text(&out, "\"");
    return out.len;
}

size_t sg_auth_www_authenticate_scope(char *const *scopes, size_t n_scopes, const char *description, char *buf, size_t size)
{
    text_t out = {.buf = buf, .size = size};
    if (size > 0)
        buf[0] = '\0';
    puts_text(&out, "Bearer error=\"insufficient_scope\", error_description=\"");
    put_quoted_safe(&out, description != NULL ? description : "the credential lacks a scope this endpoint requires", true);
    puts_text(&out, "\", scope=\"");
    for (size_t i = 0; i < n_scopes; i++) {
        if (i > 0)
            puts_text(&out, " ");
        put_quoted_safe(&out, scopes[i], false);
    }
    puts_text(&out, "\"");
    return out.len;
}

static bool is_token68_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
           ch == '_' || ch == '~' || ch == '+' || ch == '/';
}

/* Whether the 6 bytes at `word` are "Bearer" in any case (RFC 7235 §2.1: the scheme is
 * case-insensitive). Not strncasecmp: a call into the C library and its locale per request. */
static bool is_bearer(const char *word)
{
    static const char lower[6] = {'b', 'e', 'a', 'r', 'e', 'r'};
    unsigned char diff = 0;
    for (size_t i = 0; i < 6; i++)
        diff |= (unsigned char)(((unsigned char)word[i] | 0x20) ^ (unsigned char)lower[i]);
    return diff == 0;
}

int sg_auth_bearer_span(const char *value, size_t len, const char **token, size_t *token_len)
{
    size_t at = 0, end = len;
    while (at < end && (value[at] == ' ' || value[at] == '\t'))
        at++;
    while (end > at && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    if (end - at < 6 || !is_bearer(value + at) || (end - at > 6 && value[at + 6] != ' '))
        return -1;
    at += 6;
    while (at < end && value[at] == ' ')
        at++;
    if (at == end)
        return -2;
    *token = value + at;
    *token_len = end - at;
    return 0;
}

bool sg_auth_is_token68(const char *token, size_t len)
{
    size_t stop = 0;
    while (stop < len && is_token68_char(token[stop]))
        stop++;
    if (stop == 0)
        return false;
    while (stop < len && token[stop] == '=')
        stop++;
    return stop == len;
}

int sg_auth_parse_bearer(const char *value, size_t len, const char **token, size_t *token_len)
{
    int rc = sg_auth_bearer_span(value, len, token, token_len);
    if (rc == 0 && !sg_auth_is_token68(*token, *token_len))
        rc = -2;
    return rc;
}

int sg_auth_find_cookie(const char *value, size_t len, const char *name, const char **found, size_t *found_len)
{
    size_t name_len = strlen(name);
    for (size_t at = 0; at < len;) {
        while (at < len && (value[at] == ' ' || value[at] == '\t' || value[at] == ';'))
            at++;
        size_t end = at;
        while (end < len && value[end] != ';')
            end++;
        if (end - at > name_len && memcmp(value + at, name, name_len) == 0 && value[at + name_len] == '=') {
            const char *cookie = value + at + name_len + 1;
            size_t cookie_len = end - (at + name_len + 1);
            while (cookie_len > 0 && (cookie[cookie_len - 1] == ' ' || cookie[cookie_len - 1] == '\t'))
                cookie_len--;
            if (cookie_len >= 2 && cookie[0] == '"' && cookie[cookie_len - 1] == '"') {
                cookie++;
                cookie_len -= 2;
            }
            *found = cookie;
            *found_len = cookie_len;
            return 0;
        }
        at = end;
    }
    return -1;
}
