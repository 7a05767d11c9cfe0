/*
 * sg-bench-malloc-count.so: exact accounting of a process's heap, for the memory rows (issue 13:
 * what a waiting request holds, by malloc chunk size, apart from what RSS shows). LD_PRELOAD it;
 * every malloc, calloc, realloc, memalign and free is counted by usable size (malloc_usable_size,
 * 16-byte classes up to 64 KiB, one class beyond), then handed to glibc's own allocator
 * (__libc_malloc and friends, so no dlsym at start-up). SIGUSR2 appends a snapshot to
 * $SG_MALLOC_COUNT_OUT (default /tmp/sg-malloc-count.<pid>):
 *
 *   snapshot live_bytes B live_count N total_allocs T
 *   class USABLE_FROM COUNT BYTES        (live chunks of usable size USABLE_FROM..USABLE_FROM+15)
 *   mallinfo arena A uord U ford F       (glibc's totals over every arena: in use, free)
 *   end
 *
 * Two snapshots (idle, then holding N requests) subtracted and divided by N give what a request
 * holds per size class; `ford` growing is free heap left between live chunks (fragmentation).
 * glibc only; counters are relaxed atomics, the snapshot is written from the signal handler with
 * snprintf (not async-signal-safe, acceptable for a bench tool: the process is idle then).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *old, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t alignment, size_t size);

#define SG_MC_CLASSES 4097 /* 16-byte classes up to 64 KiB, then one for everything larger */

static atomic_long live_bytes, live_count, total_allocs;
static atomic_long class_count[SG_MC_CLASSES], class_bytes[SG_MC_CLASSES];

static void count(void *p, long sign)
{
    if (p == NULL)
        return;
    size_t usable = malloc_usable_size(p);
    size_t class = usable / 16 < SG_MC_CLASSES ? usable / 16 : SG_MC_CLASSES - 1;
    atomic_fetch_add_explicit(&live_bytes, sign * (long)usable, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_count, sign, memory_order_relaxed);
    atomic_fetch_add_explicit(&class_count[class], sign, memory_order_relaxed);
    atomic_fetch_add_explicit(&class_bytes[class], sign * (long)usable, memory_order_relaxed);
    if (sign > 0)
        atomic_fetch_add_explicit(&total_allocs, 1, memory_order_relaxed);
}

void *malloc(size_t size)
{
    void *p = __libc_malloc(size);
    count(p, 1);
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    count(p, 1);
    return p;
}

void *realloc(void *old, size_t size)
{
    count(old, -1);
    void *p = __libc_realloc(old, size);
    if (p != NULL)
        count(p, 1);
    else if (old != NULL && size != 0)
        count(old, 1); /* failed: the old block stays */
    return p;
}

void free(void *p)
{
    count(p, -1);
    __libc_free(p);
}

void *memalign(size_t alignment, size_t size)
{
    void *p = __libc_memalign(alignment, size);
    count(p, 1);
    return p;
}

void *aligned_alloc(size_t alignment, size_t size)
{
    return memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    void *p = memalign(alignment, size);
    if (p == NULL)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static void put(int fd, const char *text, int len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, (size_t)len);
        if (n <= 0)
            return;
        text += n;
        len -= (int)n;
    }
}

static void on_snapshot(int sig)
{
    (void)sig;
    char path[512], line[160];
    const char *out = getenv("SG_MALLOC_COUNT_OUT");
    if (out != NULL)
        snprintf(path, sizeof(path), "%s", out);
    else
        snprintf(path, sizeof(path), "/tmp/sg-malloc-count.%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    put(fd, line,
        snprintf(line, sizeof(line), "snapshot live_bytes %ld live_count %ld total_allocs %ld\n", atomic_load(&live_bytes),
                 atomic_load(&live_count), atomic_load(&total_allocs)));
    for (int i = 0; i < SG_MC_CLASSES; ++i) {
        long n = atomic_load(&class_count[i]);
        if (n != 0)
            put(fd, line, snprintf(line, sizeof(line), "class %d %ld %ld\n", i * 16, n, atomic_load(&class_bytes[i])));
    }
    struct mallinfo2 info = mallinfo2();
    put(fd, line,
        snprintf(line, sizeof(line), "mallinfo arena %zu uord %zu ford %zu\nend\n", info.arena, info.uordblks, info.fordblks));
    close(fd);
}

__attribute__((constructor)) static void start(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_snapshot;
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &action, NULL);
}
