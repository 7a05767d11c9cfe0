/*
 * A small tmpfs for the full-disk tests of queries/ (tests/queries): mounted on a new temp
 * directory when the process may mount (root, or a user namespace with the right), otherwise the
 * test is skipped with the reason. A "filler" file takes most of the room, so a test can fill the
 * disk quickly and then free room by deleting it.
 */
#ifndef SG_TEST_TMPFS_H
#define SG_TEST_TMPFS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

typedef struct {
    char dir[256];
    char filler[300];
    int mounted;
} sg_test_tmpfs_t;

/* Mounts left when a test fails before its own unmount: detached at exit. */
static char sg_test_tmpfs_left[8][256];

static void sg_test_tmpfs_cleanup(void)
{
    for (size_t i = 0; i < sizeof(sg_test_tmpfs_left) / sizeof(sg_test_tmpfs_left[0]); i++)
        if (sg_test_tmpfs_left[i][0] != '\0' && umount2(sg_test_tmpfs_left[i], MNT_DETACH) == 0)
            rmdir(sg_test_tmpfs_left[i]);
}

static void sg_test_tmpfs_remember(const char *dir, int keep)
{
    static int registered;
    if (!registered && atexit(sg_test_tmpfs_cleanup) == 0)
        registered = 1;
    for (size_t i = 0; i < sizeof(sg_test_tmpfs_left) / sizeof(sg_test_tmpfs_left[0]); i++) {
        if (keep && sg_test_tmpfs_left[i][0] == '\0') {
            snprintf(sg_test_tmpfs_left[i], sizeof(sg_test_tmpfs_left[i]), "%s", dir);
            return;
        }
        if (!keep && strcmp(sg_test_tmpfs_left[i], dir) == 0) {
            sg_test_tmpfs_left[i][0] = '\0';
            return;
        }
    }
}

/* Mounts a tmpfs of size_mb MiB. Returns 0, or -1 with why (then skip the test). */
static int sg_test_tmpfs_mount(sg_test_tmpfs_t *fs, unsigned size_mb, char *why, size_t whylen)
{
    memset(fs, 0, sizeof(*fs));
    const char *tmp = getenv("TMPDIR");
    snprintf(fs->dir, sizeof(fs->dir), "%s/sg-tmpfs-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(fs->dir) == NULL) {
        snprintf(why, whylen, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    char options[64];
    snprintf(options, sizeof(options), "size=%um", size_mb);
    if (mount("tmpfs", fs->dir, "tmpfs", 0, options) != 0) {
        snprintf(why, whylen, "cannot mount a tmpfs on %s (%s): the full-disk test needs root", fs->dir, strerror(errno));
        rmdir(fs->dir);
        return -1;
    }
    fs->mounted = 1;
    sg_test_tmpfs_remember(fs->dir, 1);
    snprintf(fs->filler, sizeof(fs->filler), "%s/filler", fs->dir);
    return 0;
}

/* Writes a filler file of size_mb MiB (real pages: tmpfs has no holes). Returns 0 or -1. */
static int sg_test_tmpfs_fill(sg_test_tmpfs_t *fs, unsigned size_mb)
{
    int fd = open(fs->filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    static char block[1 << 20];
    memset(block, 0x5a, sizeof(block));
    int rc = 0;
    for (unsigned i = 0; i < size_mb && rc == 0; i++)
        rc = write(fd, block, sizeof(block)) == (ssize_t)sizeof(block) ? 0 : -1;
    close(fd);
    return rc;
}

static void sg_test_tmpfs_free(sg_test_tmpfs_t *fs)
{
    unlink(fs->filler);
}

/* Unmounts (lazily: the data is gone with it) and removes the directory. */
static void sg_test_tmpfs_unmount(sg_test_tmpfs_t *fs)
{
    if (!fs->mounted)
        return;
    umount2(fs->dir, MNT_DETACH);
    rmdir(fs->dir);
    fs->mounted = 0;
    sg_test_tmpfs_remember(fs->dir, 0);
}

#endif
