/*
 * See http_text.h. Everything here reads bounded client or worker input and never allocates.
 */
#include "http_text.h"

#include <string.h>
#include <strings.h>

static int text_is(const char *text, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    return len == n && strncasecmp(text, lower, n) == 0;
}

void sg_prefer_parse(const char *value, size_t len, int *async, int64_t *wait_ms)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            ++i;
        size_t start = i;
        while (i < len && value[i] != ',')
            ++i;
        size_t end = start;
        while (end < i && value[end] != ';' && value[end] != ' ' && value[end] != '\t')
            ++end;
        const char *item = value + start;
        size_t item_len = end - start;
        if (text_is(item, item_len, "respond-async")) {
            *async = 1;
        } else if (item_len > 5 && text_is(item, 5, "wait=")) {
            int64_t seconds = 0;
            size_t k = 5;
            for (; k < item_len && item[k] >= '0' && item[k] <= '9' && seconds < 1000000; ++k)
                seconds = seconds * 10 + (item[k] - '0');
            if (k == item_len)
                *wait_ms = seconds * 1000;
        }
    }
}

/* The length of the type/subtype: up to parameters or white space. */
static size_t essence_len(const char *value, size_t len)
{
    size_t n = 0;
    while (n < len && value[n] != ';' && value[n] != ' ' && value[n] != '\t')
        ++n;
    return n;
}

int sg_media_type_is(const char *value, size_t len, const char *type)
{
    return value != NULL && text_is(value, essence_len(value, len), type);
}

int sg_media_type_is_json(const char *value, size_t len)
{
    if (value == NULL)
        return 0;
    size_t n = essence_len(value, len);
    if (text_is(value, n, "application/json"))
        return 1;
    return n > 17 && text_is(value, 12, "application/") && text_is(value + n - 5, 5, "+json");
}

int sg_http_status_parse(const void *text, size_t len)
{
    const char *digits = text;
    if (digits == NULL || len != 3)
        return 0;
    int status = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (digits[i] < '0' || digits[i] > '9')
            return 0;
        status = status * 10 + (digits[i] - '0');
    }
    return status >= 100 && status <= 599 ? status : 0;
}

int sg_http_status_is_final(int status)
{
    return status >= 200 && status <= 599;
}

int sg_http_status_has_content(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_"
 * / "`" / "|" / "~" / DIGIT / ALPHA */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int sg_http_header_name_ok(const void *name, size_t len)
{
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
                                           "trailer",        "proxy-connection",  "host"};
    const unsigned char *bytes = name;
    if (bytes == NULL || len == 0 || len > SG_HTTP_MAX_HEADER_NAME)
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (!is_tchar(bytes[i]))
            return 0;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); ++i)
        if (text_is(name, len, reserved[i]))
            return 0;
    return 1;
}

void sg_http_lowercase(const void *name, size_t len, char *out)
{
    const unsigned char *bytes = name;
    for (size_t i = 0; i < len; ++i)
        out[i] = (char)(bytes[i] >= 'A' && bytes[i] <= 'Z' ? bytes[i] - 'A' + 'a' : bytes[i]);
    out[len] = '\0';
}

int sg_idempotency_key_parse(const char *value, size_t len, size_t *start, size_t *key_len)
{
    size_t from = 0;
    if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
        from = 1;
        len -= 2;
    }
    if (len == 0 || len > SG_IDEMPOTENCY_KEY_MAX)
        return -1;
    for (size_t i = 0; i < len; ++i)
        if (value[from + i] < 0x21 || value[from + i] > 0x7e)
            return -1;
    *start = from;
    *key_len = len;
    return 0;
}

int sg_http_header_value_ok(const void *value, size_t len)
{
    const unsigned char *bytes = value;
    for (size_t i = 0; i < len; ++i)
        if (bytes[i] == '\r' || bytes[i] == '\n' || bytes[i] == '\0')
            return 0;
    return 1;
}

const char *sg_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "";
    }
}
