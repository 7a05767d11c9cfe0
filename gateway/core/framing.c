/*
 * See framing.h. Lines end at LF (a CR before it is dropped), as picohttpparser, H2O's parser,
 * reads them; the head ends at the first empty line.
 */
#include "framing.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int name_is(const char *name, size_t len, const char *lower)
{
    return strlen(lower) == len && strncasecmp(name, lower, len) == 0;
}

static sg_head_check_t refuse(char *why, size_t whylen, sg_head_check_t kind, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    return kind;
}

/* The decimal value of digits[0..len), or -1 when it is empty, not all digits, or over 18 digits
 * (no body that large is accepted anywhere). */
static long long content_length_of(const char *digits, size_t len)
{
    if (len == 0 || len > 18)
        return -1;
    long long value = 0;
    for (size_t i = 0; i < len; ++i) {
        if (digits[i] < '0' || digits[i] > '9')
            return -1;
        value = value * 10 + (digits[i] - '0');
    }
    return value;
}

sg_head_check_t sg_http1_head_check(const char *head, size_t len, char *why, size_t whylen)
{
    size_t at = 0;
    while (at < len && (head[at] == '\r' || head[at] == '\n'))
        ++at;
    const char *eol = memchr(head + at, '\n', len - at);
    if (eol == NULL)
        return SG_HEAD_OK; /* not even the request line: nothing to judge */
    size_t line_end = (size_t)(eol - head);
    if (line_end > at && head[line_end - 1] == '\r')
        --line_end;
    int http11 = line_end - at >= 8 && memcmp(head + line_end - 8, "HTTP/1.1", 8) == 0;
    at = (size_t)(eol - head) + 1;
    long long content_length = -1;
    int transfer_encoding = 0, hosts = 0, complete = 0;
    while (at < len) {
        eol = memchr(head + at, '\n', len - at);
        if (eol == NULL)
            break; /* a head cut short: its last line is not complete */
        line_end = (size_t)(eol - head);
        size_t next = line_end + 1;
        if (line_end > at && head[line_end - 1] == '\r')
            --line_end;
        const char *line = head + at;
        size_t line_len = line_end - at;
        if (line_len == 0) {
            complete = 1; /* the end of the head */
            break;
        }
        if (line[0] == ' ' || line[0] == '\t')
            return refuse(why, whylen, SG_HEAD_INVALID, "obsolete line folding in the request head");
        const char *colon = memchr(line, ':', line_len);
        if (colon == NULL)
            return refuse(why, whylen, SG_HEAD_INVALID, "a header line without a colon");
        size_t name_len = (size_t)(colon - line);
        if (name_len == 0 || line[name_len - 1] == ' ' || line[name_len - 1] == '\t')
            return refuse(why, whylen, SG_HEAD_INVALID, "white space between a header name and its colon");
        const char *value = colon + 1;
        size_t value_len = line_len - name_len - 1;
        while (value_len > 0 && (value[0] == ' ' || value[0] == '\t'))
            ++value, --value_len;
        while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
            --value_len;
        if (name_is(line, name_len, "content-length")) {
            long long this_length = content_length_of(value, value_len);
            if (this_length < 0)
                return refuse(why, whylen, SG_HEAD_AMBIGUOUS_FRAMING, "Content-Length is not a number");
            if (content_length >= 0 && this_length != content_length)
                return refuse(why, whylen, SG_HEAD_AMBIGUOUS_FRAMING, "two different Content-Length values");
            content_length = this_length;
        } else if (name_is(line, name_len, "transfer-encoding")) {
            if (transfer_encoding)
                return refuse(why, whylen, SG_HEAD_AMBIGUOUS_FRAMING, "Transfer-Encoding is given more than once");
            transfer_encoding = 1;
        } else if (name_is(line, name_len, "host") && ++hosts > 1) {
            return refuse(why, whylen, SG_HEAD_INVALID, "Host is given more than once");
        }
        at = next;
    }
    if (content_length >= 0 && transfer_encoding)
        return refuse(why, whylen, SG_HEAD_AMBIGUOUS_FRAMING, "both Content-Length and Transfer-Encoding");
    if (complete && http11 && hosts == 0)
        return refuse(why, whylen, SG_HEAD_INVALID, "an HTTP/1.1 request without Host");
    return SG_HEAD_OK;
}
