/*
 * How a thread that serves librdkafka queues sleeps (bridge_int.h): on a condition variable that
 * librdkafka's queue-event callback, a shutdown or the thread's own "more to do" signals, never
 * on a single queue, so one thread serves several queues with no polling delay.
 */
#include "bridge_int.h"

void sg_wake_init(sg_wake_t *wake)
{
    pthread_mutex_init(&wake->mutex, NULL);
    pthread_cond_init(&wake->cond, NULL);
    wake->woken = 0;
}

void sg_wake_dispose(sg_wake_t *wake)
{
    pthread_cond_destroy(&wake->cond);
    pthread_mutex_destroy(&wake->mutex);
}

void sg_wake(sg_wake_t *wake)
{
    pthread_mutex_lock(&wake->mutex);
    wake->woken = 1;
    pthread_cond_signal(&wake->cond);
    pthread_mutex_unlock(&wake->mutex);
}

void sg_wake_on_queue_event(rd_kafka_t *rk, void *wake)
{
    sg_wake(wake);
}

void sg_wake_wait(sg_wake_t *wake, const atomic_int *stopping, int timeout_ms)
{
    struct timespec deadline = sg_bridge_deadline(timeout_ms);
    pthread_mutex_lock(&wake->mutex);
    while (!wake->woken && !atomic_load(stopping))
        if (pthread_cond_timedwait(&wake->cond, &wake->mutex, &deadline) != 0)
            break;
    wake->woken = 0;
    pthread_mutex_unlock(&wake->mutex);
}
