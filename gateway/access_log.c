/*
 * The access log (log.access): H2O's own access-log handler, a logger on every pathconf (the
 * built-ins', the routes', the static mounts' and the fallback, which sees the requests H2O
 * refuses itself), so every request gets a line, written when it is done. The format is H2O's
 * (log.access_format); it is compiled and the file opened once at start, so a bad directive or an
 * unwritable file fails the start naming the key. H2O writes each line with one write(2) from
 * the loop that served the request: lines never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gateway_int.h"

int sg_access_log_open(sg_server_t *server, char *err, size_t errlen)
{
    const sg_conf_t *conf = server->conf;
    if (conf->log.access == NULL)
        return 0;
    /* a format that starts as a JSON object gets JSON escaping of the values it quotes */
    int escape = conf->log.access_format[0] == '{' ? H2O_LOGCONF_ESCAPE_JSON : H2O_LOGCONF_ESCAPE_APACHE;
    char why[256] = "";
    h2o_logconf_t *logconf = h2o_logconf_compile(conf->log.access_format, escape, why);
    if (logconf == NULL)
        return sg_errf(err, errlen, "%s: log.access_format: %s", conf->file, why);
    h2o_logconf_dispose(logconf);
    /* "-": standard output, reopened through /dev/stdout so that H2O owns its own descriptor */
    const char *path = strcmp(conf->log.access, "-") == 0 ? "/dev/stdout" : conf->log.access;
    int fd = open(path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return sg_errf(err, errlen, "%s: log.access: cannot open %s: %s", conf->file, path, strerror(errno));
    close(fd);
    if ((server->access_log = h2o_access_log_open_handle(path, conf->log.access_format, escape)) == NULL)
        return sg_errf(err, errlen, "%s: log.access: cannot open %s", conf->file, path);
    return 0;
}

void sg_access_log_register(sg_server_t *server, h2o_pathconf_t *pathconf)
{
    if (server->access_log != NULL)
        h2o_access_log_register(pathconf, server->access_log);
}
