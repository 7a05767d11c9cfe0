/*
 * The materializer: Kafka topics in, table batches out (bridge/README.md, "Tables").
 *
 * Design: one consumer, no consumer group (partitions are assigned, so no rebalance can pause a
 * table), and one thread that reads it and builds the tables' batches. Tables on the same topic
 * share its partitions: a partition is assigned at the lowest stored position of those tables and
 * queries/table.c ignores what a table has already applied. Each poll round ends with one commit
 * per table touched (bounded in records and time), so a position is always stored in the same
 * WriteBatch (or ingested file) as the rows it covers. The commits run on a commit thread, the
 * only writer of the tables, behind a bounded hand-off (SG_MAT_COMMIT_DEPTH rounds): the next
 * round is read while the previous one is written. While restoring, rounds are large and written
 * as table files RocksDB ingests whole. If a commit fails, the records of it and of the rounds
 * behind it are lost by contract: the thread waits for the hand-off to empty and sets everything
 * up again from the stored positions, which is also what a restart does, so there is one
 * recovery path.
 */
#include "bridge_int.h"
#include "sg_materializer.h"

#include "sg_decode.h"
#include "sg_jsonv.h"
#include "sg_placement.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>

#include <librdkafka/rdkafka.h>

#include "sg_base.h"
#include "sg_log.h"

#define SG_MAT_POLL_MS 100 /* longest wait for a first record; bounds stop latency */
#define SG_MAT_METADATA_TIMEOUT_MS 2000
#define SG_MAT_ROUND_RECORDS 10000 /* a commit at least every this many records ... */
#define SG_MAT_ROUND_MS 50         /* ... or this long after a round's first record */
/* While restoring nobody reads the table's latest state yet: bigger rounds make fewer, larger
 * sorted batches (bench, 1M records: 7.5 s -> 5.2 s). Caught up, rounds stay short, because a
 * read waiting for its own write waits for the round's commit. */
#define SG_MAT_RESTORE_ROUND_RECORDS 100000
#define SG_MAT_RESTORE_ROUND_MS 200
#define SG_MAT_ROUND_BYTES (64u * 1024u * 1024u) /* keys + values a batch holds until its commit */
#define SG_MAT_CATCHUP_WAIT_MS 5                 /* while restoring, wait this long for more of a round */
/* Messages taken from the consumer queue in one call: per message, rd_kafka_consume_queue()
 * pays for a clock read, the poll bookkeeping and a wait set-up (batches took 12 % off a
 * restore's reading thread, callgrind). A round may go past SG_MAT_ROUND_BYTES by one such batch, i.e.
 * by no more than librdkafka had queued (queued.max.messages.kbytes). */
#define SG_MAT_CONSUME_BATCH 256
#define SG_MAT_RETRY_MS 500
#define SG_MAT_LATEST_TIMEOUT_MS 2000 /* a fresh=latest query's ListOffsets round */
/* librdkafka stops fetching a partition while its queue (here: the consumer queue all partitions
 * share) holds queued.min.messages (default 100000, one restore round) or
 * queued.max.messages.kbytes (64 MiB), and librdkafka 2.0 fetches it again only a second later.
 * A restore reads slower than librdkafka fetches, so with the default it hit the count every
 * round and then waited for nothing: 1-5 s of a 1M-record restore went to empty polls (bench,
 * "restore"). The count is lifted; the queue's bound is its size in bytes, as before. */
#define SG_MAT_QUEUED_MIN_MESSAGES "10000000"
/* Rounds handed to the commit thread and not yet written, at most: one being written while the
 * next is read is the overlap; more would only hold more memory. */
#define SG_MAT_COMMIT_DEPTH 2

typedef struct {
    const char *name;
    size_t *tables; /* indices into conf->tables */
    size_t n_tables;
    struct st_sg_materializer_t *m;
} sg_mat_topic_t;

typedef struct {
    size_t topic;
    int32_t partition;
    int64_t start_offset; /* where this assignment started reading */
    int64_t start_high;   /* high watermark seen at setup: the readiness target */
    int64_t next;         /* next offset to read (everything below is in a batch or committed) */
    int64_t stream_time;  /* largest record timestamp applied (or stored before the assignment) */
} sg_mat_part_t;

typedef struct {
    int32_t *partitions;
    size_t n;
} sg_mat_known_t;

typedef struct st_sg_mat_latest_t {
    struct st_sg_mat_latest_t *next;
    size_t topic;
    sg_materializer_latest_cb cb;
    void *ctx;
} sg_mat_latest_t;

typedef struct {
    sg_table_batch_t *batch;
    int dirty; /* the batch has rows or advanced positions to commit */
    /* stats for /metrics: written by the materializer thread after each round, read by any */
    atomic_llong lag, stream_time_ms;
    atomic_ullong restore_total, restore_done;
} sg_mat_table_t;

/* A round's commit of one table, on its way to the commit thread. */
typedef struct st_sg_mat_job_t {
    struct st_sg_mat_job_t *next;
    size_t table;
    sg_table_commit_t *commit;
} sg_mat_job_t;

/* Causes of skipped records in table_once, each logged once per table (table index in the low
 * bits; records without a key once in all). */
enum { SG_MAT_SKIP_UNUSABLE = 1, SG_MAT_SKIP_NOT_JSON = 2, SG_MAT_SKIP_NO_KEY = 3 };
#define SG_MAT_CAUSE(kind, table) ((uint64_t)(kind) << 32 | (uint64_t)(table))

struct st_sg_materializer_t {
    const sg_conf_t *conf;
    sg_tables_t *tables;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    sg_mat_topic_t *topics;
    size_t n_topics;
    sg_mat_table_t *state; /* per conf->tables[i] */
    sg_mat_part_t *parts;
    size_t n_parts;
    size_t last_part; /* find_part's last answer: a fetch brings runs of one partition */
    sg_materializer_progress_cb progress_cb;
    void *ctx;
    pthread_t thread;
    int thread_started;
    atomic_int stopping;
    atomic_int caught_up;
    /* restore progress, logged at most once a second until caught up */
    uint64_t applied;
    uint64_t applied_at_log;
    int64_t started_ms, logged_ms;
    atomic_ullong skipped;          /* records not applied: not JSON, undecodable, over the limits */
    atomic_ullong rebuilds;         /* tables reset and rebuilt from the beginning of their topic */
    int storage_down;               /* the tables' storage was unavailable at the last check (logged) */
    uint64_t recover_cause;         /* sg_log_cause_of the last failed reopen's error logged (0: none) */
    int policy_checked;             /* the topics' cleanup.policy has been asked for */
    rd_kafka_queue_t *policy_queue; /* its answer, until it came or timed out */
    int64_t policy_deadline_ms;
    sg_registry_t *registry; /* decodes Confluent-framed values; may be NULL */
    /* Partitioned tables (sg_placement.h): only the partitions this instance keeps are read; a
     * new generation of that set makes the thread set up again. `ready` (per table, per
     * partition) is 1 once a kept partition was committed up to the high watermark seen when it
     * was added to the set, for as long as it stays in it. */
    sg_placement_t *placement;
    uint64_t placement_generation;
    _Atomic uint8_t (*ready)[SG_PLACEMENT_MAX_PARTITIONS]; /* per conf->tables[i] */
    sg_log_once_t undecodable_once;                        /* by schema id */
    sg_log_once_t table_once;                              /* by SG_MAT_CAUSE */
    /* Partitions per topic as of the last setup, for the watermark query thread. */
    pthread_mutex_t parts_lock;
    sg_mat_known_t *known; /* per topic */
    /* the commit thread and its hand-off (FIFO) */
    pthread_t commit_thread;
    int commit_started;
    pthread_t settle_thread; /* once caught up: sg_tables_settle */
    int settle_started;
    pthread_mutex_t commit_lock;
    pthread_cond_t commit_cond; /* a job queued, a job done, or stopping */
    sg_mat_job_t *jobs_head, *jobs_tail;
    size_t jobs_pending;      /* queued or being written */
    atomic_int commit_failed; /* a commit failed: later jobs are dropped until the materializer has drained */
    int commit_stopping;
    /* "latest" queries: asked by loop threads, answered on the query thread */
    pthread_mutex_t latest_lock;
    pthread_cond_t latest_cond;
    sg_mat_latest_t *latest_jobs; /* LIFO list */
    pthread_t latest_thread;
    int latest_started;
};

/* The commit thread: writes the jobs in order; after a failure drops the rest (their positions
 * assume the failed one) until the materializer has drained and set up again. */
static void *commit_main(void *arg)
{
    sg_materializer_t *m = arg;
    sg_thread_name("sg-tbl-commit");
    pthread_mutex_lock(&m->commit_lock);
    for (;;) {
        while (m->jobs_head == NULL && !m->commit_stopping)
            pthread_cond_wait(&m->commit_cond, &m->commit_lock);
        sg_mat_job_t *job = m->jobs_head;
        if (job == NULL)
            break; /* stopping with nothing left */
        m->jobs_head = job->next;
        if (m->jobs_head == NULL)
            m->jobs_tail = NULL;
        int failed = atomic_load(&m->commit_failed);
        pthread_mutex_unlock(&m->commit_lock);
        int rc = 0;
        char err[512];
        if (!failed && (rc = sg_table_commit_run(job->commit, err, sizeof(err))) != 0)
            sg_log_error("table %s: commit: %s (resuming from the stored positions)", m->conf->tables[job->table].name,
                         rc == SG_TABLE_ECONFLICT ? "written by someone else" : err);
        else if (!failed && m->progress_cb != NULL)
            m->progress_cb(m->ctx, job->table);
        sg_table_commit_destroy(job->commit);
        free(job);
        pthread_mutex_lock(&m->commit_lock);
        if (rc != 0)
            atomic_store(&m->commit_failed, 1);
        --m->jobs_pending;
        pthread_cond_broadcast(&m->commit_cond);
    }
    pthread_mutex_unlock(&m->commit_lock);
    return NULL;
}

/* Hands a table's round to the commit thread, waiting while SG_MAT_COMMIT_DEPTH rounds are
 * pending. Returns 0, or -1 when an earlier commit failed (the job is dropped). */
static int hand_off(sg_materializer_t *m, size_t table, sg_table_commit_t *commit)
{
    sg_mat_job_t *job = sg_calloc(1, sizeof(*job));
    job->table = table;
    job->commit = commit;
    pthread_mutex_lock(&m->commit_lock);
    while (m->jobs_pending >= SG_MAT_COMMIT_DEPTH && !atomic_load(&m->commit_failed))
        pthread_cond_wait(&m->commit_cond, &m->commit_lock);
    int failed = atomic_load(&m->commit_failed);
    if (!failed) {
        if (m->jobs_tail != NULL)
            m->jobs_tail->next = job;
        else
            m->jobs_head = job;
        m->jobs_tail = job;
        ++m->jobs_pending;
        pthread_cond_broadcast(&m->commit_cond);
    }
    pthread_mutex_unlock(&m->commit_lock);
    if (failed) {
        sg_table_commit_destroy(commit);
        free(job);
        return -1;
    }
    return 0;
}

/* Whether the commit thread has a round to write. */
static int commit_busy(sg_materializer_t *m)
{
    pthread_mutex_lock(&m->commit_lock);
    int busy = m->jobs_pending > 0;
    pthread_mutex_unlock(&m->commit_lock);
    return busy;
}

/* Waits until every handed-off round is written (or dropped). Returns 0, or -1 when a commit
 * failed since the last drain (then everything must be set up again from the stored positions). */
static int drain_commits(sg_materializer_t *m)
{
    if (!m->commit_started)
        return 0;
    pthread_mutex_lock(&m->commit_lock);
    while (m->jobs_pending > 0)
        pthread_cond_wait(&m->commit_cond, &m->commit_lock);
    int failed = atomic_exchange(&m->commit_failed, 0);
    pthread_mutex_unlock(&m->commit_lock);
    return failed ? -1 : 0;
}

static void destroy_batches(sg_materializer_t *m)
{
    for (size_t i = 0; i < m->conf->n_tables; ++i) {
        sg_table_batch_destroy(m->state[i].batch);
        m->state[i].batch = NULL;
        m->state[i].dirty = 0;
    }
}

/* Resets table i when its source is not cluster_id or a stored position lies beyond the end of
 * its partition (the topic as described). Returns 0 or -1 (retry). */
static int check_table(sg_materializer_t *m, size_t i, const char *cluster_id, const sg_assign_topic_t *topic)
{
    const char *name = m->conf->tables[i].name;
    char err[512];
    char *source = NULL;
    int rc = sg_tables_get_source(m->tables, name, &source, err, sizeof(err));
    if (rc < 0) {
        sg_log_warn("table %s: %s (retrying)", name, err);
        return -1;
    }
    int fresh = rc == 1;
    const char *reason = NULL;
    if (fresh)
        reason = "new table";
    else if (strcmp(source, cluster_id) != 0)
        reason = "the Kafka cluster id changed";
    for (size_t p = 0; reason == NULL && p < topic->n_parts; ++p) {
        if (topic->parts[p].start == SG_ASSIGN_SKIP)
            continue; /* a partition of a partitioned table this instance does not keep */
        int64_t next_offset;
        rc = sg_tables_position(m->tables, name, topic->name, topic->parts[p].partition, &next_offset, NULL, err, sizeof(err));
        if (rc < 0) {
            free(source);
            sg_log_warn("table %s: %s (retrying)", name, err);
            return -1;
        }
        if (rc == 0 && next_offset > topic->parts[p].high)
            reason = "a stored position is beyond the end of the topic";
        /* Records the table has not applied were deleted (retention, or a size cap): starting at
         * the log start would skip them silently, leaving rows they deleted or replaced. */
        else if (rc == 0 && next_offset < topic->parts[p].low)
            reason = "a stored position is below the topic's log start offset (records it had not applied were deleted)";
    }
    free(source);
    if (reason == NULL)
        return 0;
    if (sg_tables_reset(m->tables, name, cluster_id, err, sizeof(err)) != 0) {
        sg_log_warn("table %s: %s (retrying)", name, err);
        return -1;
    }
    if (!fresh) {
        atomic_fetch_add(&m->rebuilds, 1);
        sg_log_warn("rebuilding table %s from the beginning (%s; counted in streamgate_table_rebuilds_total)", name, reason);
    }
    return 0;
}

/* Warns about table topics that are not compacted: a table is the latest value per key, and
 * delete-only retention loses keys that were not written again within the retention (the next
 * restore or rebuild has rows missing). Read with DescribeConfigs, sent once at the first setup
 * and polled between rounds (never waited for); a cluster that does not answer it within
 * SG_MAT_DESCRIBE_TIMEOUT_MS (librdkafka's mock cluster) is skipped quietly. */
#define SG_MAT_DESCRIBE_TIMEOUT_MS 10000
static void policy_check_send(sg_materializer_t *m)
{
    m->policy_checked = 1;
    rd_kafka_ConfigResource_t **resources = sg_calloc(m->n_topics + 1, sizeof(*resources));
    for (size_t t = 0; t < m->n_topics; ++t)
        resources[t] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, m->topics[t].name);
    m->policy_queue = rd_kafka_queue_new(m->rk);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(m->rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(options, SG_MAT_DESCRIBE_TIMEOUT_MS, errstr, sizeof(errstr));
    rd_kafka_DescribeConfigs(m->rk, resources, m->n_topics, options, m->policy_queue);
    m->policy_deadline_ms = sg_mono_ms() + SG_MAT_DESCRIBE_TIMEOUT_MS + 1000;
    rd_kafka_AdminOptions_destroy(options);
    for (size_t t = 0; t < m->n_topics; ++t)
        rd_kafka_ConfigResource_destroy(resources[t]);
    free(resources);
}

static void policy_check_poll(sg_materializer_t *m)
{
    if (m->policy_queue == NULL)
        return;
    rd_kafka_event_t *event = rd_kafka_queue_poll(m->policy_queue, 0);
    if (event == NULL && sg_mono_ms() < m->policy_deadline_ms)
        return;
    const rd_kafka_DescribeConfigs_result_t *result = event != NULL ? rd_kafka_event_DescribeConfigs_result(event) : NULL;
    if (result == NULL || rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_log_debug("tables: cleanup.policy not checked: %s",
                     event != NULL ? rd_kafka_event_error_string(event) : "no answer in time");
    } else {
        size_t n = 0;
        const rd_kafka_ConfigResource_t **described = rd_kafka_DescribeConfigs_result_resources(result, &n);
        for (size_t r = 0; r < n; ++r) {
            if (rd_kafka_ConfigResource_error(described[r]) != RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            size_t n_entries = 0;
            const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(described[r], &n_entries);
            for (size_t e = 0; e < n_entries; ++e) {
                const char *value = rd_kafka_ConfigEntry_value(entries[e]);
                if (strcmp(rd_kafka_ConfigEntry_name(entries[e]), "cleanup.policy") == 0 && value != NULL &&
                    strstr(value, "compact") == NULL)
                    sg_log_warn("tables: topic %s has cleanup.policy=%s, not compact: records deleted by retention are "
                                "lost to restores and rebuilds of its tables (a table is the latest value per key); "
                                "topics[].config: {cleanup.policy: compact} creates it compacted",
                                rd_kafka_ConfigResource_name(described[r]), value);
            }
        }
    }
    if (event != NULL)
        rd_kafka_event_destroy(event);
    rd_kafka_queue_destroy(m->policy_queue);
    m->policy_queue = NULL;
}

/* Makes topic t's partitions visible to the watermark query thread. */
static void publish_known(sg_materializer_t *m, size_t t, const sg_assign_topic_t *topic)
{
    int32_t *partitions = sg_calloc(topic->n_parts, sizeof(*partitions));
    for (size_t p = 0; p < topic->n_parts; ++p)
        partitions[p] = topic->parts[p].partition;
    pthread_mutex_lock(&m->parts_lock);
    free(m->known[t].partitions);
    m->known[t] = (sg_mat_known_t){partitions, topic->n_parts};
    pthread_mutex_unlock(&m->parts_lock);
}

/* Where a partition of topic t starts: the lowest stored position of the topic's tables (after
 * check_table, never below the log start unless nothing was applied yet), or the first record
 * there is. Returns 0 or -1 (retry). */
static int plan_partition(sg_materializer_t *m, size_t t, sg_assign_part_t *part)
{
    int64_t start = INT64_MAX, stream_time = 0;
    for (size_t k = 0; k < m->topics[t].n_tables; ++k) {
        const char *table = m->conf->tables[m->topics[t].tables[k]].name;
        char err[512];
        int64_t next_offset = 0, stored_time = 0;
        if (sg_tables_position(m->tables, table, m->topics[t].name, part->partition, &next_offset, &stored_time, err, sizeof(err)) <
            0) {
            sg_log_warn("table %s: %s (retrying)", table, err);
            return -1;
        }
        if (next_offset < start)
            start = next_offset;
        if (stored_time > stream_time)
            stream_time = stored_time;
    }
    part->start = start <= part->low ? RD_KAFKA_OFFSET_BEGINNING : start;
    m->parts = sg_reallocarray(m->parts, m->n_parts + 1, sizeof(*m->parts));
    sg_mat_part_t *state = &m->parts[m->n_parts++];
    state->topic = t;
    state->partition = part->partition;
    state->start_offset = start > part->low ? start : part->low;
    state->start_high = part->high;
    state->next = state->start_offset;
    state->stream_time = stream_time;
    return 0;
}

/* sg_assign_want_cb for a partitioned table's topic (a partitioned table is alone on its topic). */
static int keeps(void *ctx, const char *topic, int32_t partition)
{
    const sg_mat_topic_t *mat_topic = ctx;
    sg_materializer_t *m = mat_topic->m;
    return sg_placement_keeps(m->placement, mat_topic->tables[0], partition);
}

/* After a setup: a partition of a partitioned table stays ready if it was and is still read; a
 * partition no longer read is not ready. */
static void carry_ready(sg_materializer_t *m)
{
    if (m->placement == NULL)
        return;
    for (size_t i = 0; i < m->conf->n_tables; ++i) {
        if (!sg_placement_is_partitioned(m->placement, i))
            continue;
        for (int32_t p = 0; p < SG_PLACEMENT_MAX_PARTITIONS; ++p) {
            int planned = 0;
            for (size_t k = 0; k < m->n_parts && !planned; ++k)
                planned = m->parts[k].partition == p && m->topics[m->parts[k].topic].tables[0] == i;
            if (!planned)
                atomic_store(&m->ready[i][p], 0);
        }
    }
}

/* Marks the kept partitions that are committed up to their readiness target. After a commit. */
static void update_ready(sg_materializer_t *m)
{
    if (m->placement == NULL)
        return;
    int drained = 0;
    for (size_t k = 0; k < m->n_parts; ++k) {
        const sg_mat_part_t *part = &m->parts[k];
        size_t table = m->topics[part->topic].tables[0];
        if (part->partition >= 0 && part->partition < SG_PLACEMENT_MAX_PARTITIONS && part->next >= part->start_high &&
            sg_placement_is_partitioned(m->placement, table) && !atomic_load(&m->ready[table][part->partition])) {
            /* Ready means written, not only read: the commit thread finishes the rounds handed to
             * it first (once per call; a failed commit leaves the partition not ready, and the
             * loop sets up again). */
            if (!drained && drain_commits(m) != 0)
                return;
            drained = 1;
            atomic_store(&m->ready[table][part->partition], 1);
            if (m->progress_cb != NULL)
                m->progress_cb(m->ctx, table); /* reads waiting for the partition */
        }
    }
}

/* Reads the cluster id and each topic's partitions and watermarks, resets tables that must be
 * rebuilt, and assigns every partition at the lowest stored position of its tables (only the
 * kept ones of a partitioned table). Returns 0, or -1 to be retried. */
static int setup(sg_materializer_t *m)
{
    destroy_batches(m);
    m->n_parts = 0;
    m->placement_generation = sg_placement_generation(m->placement);
    /* A metadata request first: on a fresh handle rd_kafka_clusterid() alone often waits a
     * whole second for the first broker state (bench: 1.0 s vs 1 ms start-ups). */
    const struct rd_kafka_metadata *brokers = NULL;
    if (rd_kafka_metadata(m->rk, 0, NULL, &brokers, SG_MAT_METADATA_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(brokers);
    char *cluster_id = rd_kafka_clusterid(m->rk, SG_MAT_METADATA_TIMEOUT_MS);
    if (cluster_id == NULL) {
        sg_log_warn("tables: no Kafka cluster id yet (retrying)");
        return -1;
    }
    sg_assign_topic_t *topics = sg_calloc(m->n_topics, sizeof(*topics));
    char err[512];
    int rc = 0;
    for (size_t t = 0; t < m->n_topics && rc == 0 && !atomic_load(&m->stopping); ++t) {
        int placed = sg_placement_is_partitioned(m->placement, m->topics[t].tables[0]);
        if (sg_assign_describe(m->rk, m->topics[t].name, placed ? keeps : NULL, &m->topics[t], SG_MAT_METADATA_TIMEOUT_MS,
                               &m->stopping, &topics[t], err, sizeof(err)) != 0) {
            sg_log_warn("table %s (retrying)", err);
            rc = -1;
        }
        for (size_t k = 0; rc == 0 && k < m->topics[t].n_tables; ++k)
            rc = check_table(m, m->topics[t].tables[k], cluster_id, &topics[t]);
        for (size_t p = 0; rc == 0 && p < topics[t].n_parts; ++p)
            if (topics[t].parts[p].start != SG_ASSIGN_SKIP)
                rc = plan_partition(m, t, &topics[t].parts[p]);
        if (rc == 0)
            publish_known(m, t, &topics[t]);
    }
    rd_kafka_mem_free(m->rk, cluster_id);
    if (rc == 0 && atomic_load(&m->stopping))
        rc = -1;
    if (rc == 0 && sg_assign_apply(m->rk, topics, m->n_topics, err, sizeof(err)) != 0) {
        sg_log_warn("tables: %s (retrying)", err);
        rc = -1;
    }
    sg_assign_dispose(topics, m->n_topics);
    free(topics);
    if (rc == 0)
        carry_ready(m);
    /* Batches are made after any reset: a reset makes older batches of the table unusable. */
    for (size_t i = 0; rc == 0 && i < m->conf->n_tables; ++i)
        if ((m->state[i].batch = sg_table_batch_new(m->tables, m->conf->tables[i].name)) == NULL) {
            sg_log_error("table %s is not open", m->conf->tables[i].name);
            rc = -1;
        }
    return rc;
}

static sg_mat_part_t *find_part(sg_materializer_t *m, const char *topic, int32_t partition)
{
    size_t i = m->last_part;
    if (i < m->n_parts && m->parts[i].partition == partition && strcmp(m->topics[m->parts[i].topic].name, topic) == 0)
        return &m->parts[i];
    for (i = 0; i < m->n_parts; ++i)
        if (m->parts[i].partition == partition && strcmp(m->topics[m->parts[i].topic].name, topic) == 0) {
            m->last_part = i;
            return &m->parts[i];
        }
    return NULL;
}

/* Moves table positions past offsets that carry no row. Returns 0, or -1 (the round is lost). */
static int advance_all(sg_materializer_t *m, const sg_mat_part_t *part, int64_t next_offset)
{
    const sg_mat_topic_t *topic = &m->topics[part->topic];
    for (size_t k = 0; k < topic->n_tables; ++k) {
        sg_mat_table_t *state = &m->state[topic->tables[k]];
        char err[512];
        int rc = sg_table_batch_advance(state->batch, topic->name, part->partition, next_offset, err, sizeof(err));
        if (rc < 0) {
            sg_log_error("table %s: %s", m->conf->tables[topic->tables[k]].name, err);
            return -1;
        }
        if (rc == 0)
            state->dirty = 1;
    }
    return 0;
}

/* Tables serve values as JSON documents: a value must be one JSON text (any type). Checked
 * without building a tree: this runs for every record. */
static int value_is_json(const void *data, size_t len, char *why, size_t whylen)
{
    size_t at = 0;
    if (sg_jsonv_check(data, len, &at))
        return 1;
    snprintf(why, whylen, "not JSON at byte %zu", at);
    return 0;
}

/* Applies one consumed message to every table on its topic. Returns 0, or -1 (the round is lost). */
static int apply(sg_materializer_t *m, const rd_kafka_message_t *msg)
{
    const char *topic_name = rd_kafka_topic_name(msg->rkt);
    sg_mat_part_t *part = find_part(m, topic_name, msg->partition);
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* The end of the partition: positions move up to it even when the last offsets held no
         * record to apply (transaction markers, compaction), so the table reads as complete. */
        if (part == NULL || msg->offset < part->next)
            return 0;
        part->next = msg->offset;
        return advance_all(m, part, msg->offset);
    }
    if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
        /* auto.offset.reset=error: the offset we read at is gone (retention deleted records while
         * we were behind) or past the end. librdkafka's "earliest" would jump silently; instead
         * the round is dropped and setup() compares the stored positions with the watermarks
         * again, rebuilding the tables that lost records. */
        sg_log_warn("tables: %s [%d]: %s (checking the stored positions again)", topic_name, (int)msg->partition,
                    rd_kafka_message_errstr(msg));
        return -1;
    }
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_log_warn("tables: %s [%d]: %s", topic_name, (int)msg->partition, rd_kafka_message_errstr(msg));
        return 0;
    }
    if (part == NULL)
        return 0; /* from an assignment we have since replaced */
    part->next = msg->offset + 1;
    ++m->applied;
    if (msg->key == NULL || msg->key_len == 0) {
        if (sg_log_once(&m->table_once, SG_MAT_CAUSE(SG_MAT_SKIP_NO_KEY, 0)))
            sg_log_warn("tables: %s [%d] offset %lld has no key; records without a key are skipped (logged once)", topic_name,
                        (int)msg->partition, (long long)msg->offset);
        return advance_all(m, part, msg->offset + 1);
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
    if (timestamp_ms > part->stream_time)
        part->stream_time = timestamp_ms;
    const sg_mat_topic_t *topic = &m->topics[part->topic];
    char why[512]; /* written before it is read; not cleared: this runs for every record */
    why[0] = '\0';
    const void *value = msg->payload;
    size_t value_len = msg->payload != NULL ? msg->len : 0;
    char *decoded = NULL;
    int framed = sg_decode_is_framed(value, value_len);
    int usable = 1;
    if (framed) {
        /* Avro in the Confluent wire format: stored as the JSON it decodes to. */
        uint32_t schema_id;
        if (sg_decode_framed(m->registry, value, value_len, &decoded, &value_len, &schema_id, why, sizeof(why)) == 0) {
            value = decoded;
        } else {
            usable = 0;
            if (sg_log_once(&m->undecodable_once, schema_id))
                sg_log_warn("tables: %s [%d] offset %lld skipped: %s (logged once per schema id; "
                            "counted in streamgate_table_records_skipped_total)",
                            topic_name, (int)msg->partition, (long long)msg->offset, why);
        }
    } else if (value != NULL) {
        usable = value_is_json(value, value_len, why, sizeof(why));
    }
    if (!usable)
        atomic_fetch_add(&m->skipped, 1); /* once per record, whatever the number of tables */
    int rc = 0;
    for (size_t k = 0; k < topic->n_tables && rc == 0; ++k) {
        size_t table = topic->tables[k];
        sg_mat_table_t *state = &m->state[table];
        char err[512];
        int put = -1;
        if (usable) {
            put = sg_table_batch_put(state->batch, topic->name, msg->partition, msg->offset, timestamp_ms, msg->key, msg->key_len,
                                     value, value_len, err, sizeof(err));
            /* Unusable record (key or value over the limits): skipped, never a stopped table. */
            if (put < 0 && sg_log_once(&m->table_once, SG_MAT_CAUSE(SG_MAT_SKIP_UNUSABLE, table)))
                sg_log_warn("table %s: %s [%d] offset %lld skipped: %s (logged once)", m->conf->tables[table].name, topic->name,
                            (int)msg->partition, (long long)msg->offset, err);
        } else if (!framed && sg_log_once(&m->table_once, SG_MAT_CAUSE(SG_MAT_SKIP_NOT_JSON, table))) {
            sg_log_warn("table %s: %s [%d] offset %lld skipped: the value is %s; "
                        "such records are counted in streamgate_table_records_skipped_total (logged once)",
                        m->conf->tables[table].name, topic->name, (int)msg->partition, (long long)msg->offset, why);
        }
        if (put == 0) {
            state->dirty = 1;
        } else if (put < 0) {
            if (usable)
                atomic_fetch_add(&m->skipped, 1);
            /* The position still moves past it. */
            int advanced = sg_table_batch_advance(state->batch, topic->name, msg->partition, msg->offset + 1, err, sizeof(err));
            if (advanced < 0) {
                sg_log_error("table %s: %s", m->conf->tables[table].name, err);
                rc = -1;
            } else if (advanced == 0) {
                state->dirty = 1;
            }
        }
    }
    free(decoded);
    return rc;
}

static void log_progress(sg_materializer_t *m, int64_t now)
{
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < m->n_parts; ++i) {
        const sg_mat_part_t *part = &m->parts[i];
        if (part->start_high <= part->start_offset)
            continue;
        total += (uint64_t)(part->start_high - part->start_offset);
        int64_t upto = part->next < part->start_high ? part->next : part->start_high;
        done += (uint64_t)(upto - part->start_offset);
    }
    double seconds = (double)(now - m->logged_ms) / 1000.0;
    sg_log_info("restoring tables: %llu records applied, %.0f records/s, %.1f%% done", (unsigned long long)m->applied,
                seconds > 0 ? (double)(m->applied - m->applied_at_log) / seconds : 0.0,
                total > 0 ? 100.0 * (double)done / (double)total : 100.0);
    m->applied_at_log = m->applied;
    m->logged_ms = now;
}

/* Each table's lag, stream time and restore progress, for sg_materializer_table_stats. The
 * watermarks are the consumer's cached ones (from its last fetch): no broker round trip. */
static void publish_stats(sg_materializer_t *m)
{
    for (size_t i = 0; i < m->conf->n_tables; ++i) {
        int64_t lag = 0, stream_time = 0;
        uint64_t total = 0, done = 0;
        for (size_t p = 0; p < m->n_parts; ++p) {
            const sg_mat_part_t *part = &m->parts[p];
            if (strcmp(m->topics[part->topic].name, m->conf->tables[i].topic) != 0)
                continue;
            int64_t low, high;
            if (rd_kafka_get_watermark_offsets(m->rk, m->topics[part->topic].name, part->partition, &low, &high) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                high > part->next)
                lag += high - part->next;
            if (part->stream_time > stream_time)
                stream_time = part->stream_time;
            if (part->start_high > part->start_offset) {
                total += (uint64_t)(part->start_high - part->start_offset);
                done += (uint64_t)((part->next < part->start_high ? part->next : part->start_high) - part->start_offset);
            }
        }
        atomic_store(&m->state[i].lag, lag);
        atomic_store(&m->state[i].stream_time_ms, stream_time);
        atomic_store(&m->state[i].restore_total, total);
        atomic_store(&m->state[i].restore_done, done);
    }
}

void sg_materializer_table_stats(const sg_materializer_t *m, size_t table_index, sg_table_stats_t *out)
{
    const sg_mat_table_t *state = &m->state[table_index];
    uint64_t total = atomic_load(&state->restore_total), done = atomic_load(&state->restore_done);
    out->lag = atomic_load(&state->lag);
    out->stream_time_ms = atomic_load(&state->stream_time_ms);
    /* once caught up a table stays restored, whatever arrives later */
    out->restore_ratio = atomic_load(&m->caught_up) ? 1.0 : total > 0 ? (double)done / (double)total : 0.0;
}

static void *settle_main(void *arg)
{
    sg_materializer_t *m = arg;
    sg_thread_name("sg-tbl-settle");
    char err[512];
    int64_t start = sg_mono_ms();
    if (sg_tables_settle(m->tables, err, sizeof(err)) != 0)
        sg_log_warn("tables: %s", err); /* the storage's failure: it stops writes, the next commit reports it */
    else
        sg_log_info("tables settled (flushed, merged, cached) in %.1f s", (double)(sg_mono_ms() - start) / 1000.0);
    return NULL;
}

/* Returns -1 when a commit failed (set up again). */
static int check_caught_up(sg_materializer_t *m)
{
    if (atomic_load(&m->caught_up))
        return 0;
    for (size_t i = 0; i < m->n_parts; ++i)
        if (m->parts[i].next < m->parts[i].start_high)
            return 0;
    /* Read to the end: caught up once it is all written. */
    if (drain_commits(m) != 0)
        return -1;
    sg_tables_set_restoring(m->tables, 0);
    int64_t elapsed = sg_mono_ms() - m->started_ms;
    /* The process's CPU time with it: what bench/run sets beside a raw read's (bench/README.md). */
    struct rusage usage;
    double cpu = getrusage(RUSAGE_SELF, &usage) == 0 ? (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                                                           (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
                                                     : 0.0;
    sg_log_info("tables caught up: %llu records applied in %.2f s (process CPU %.2f s)", (unsigned long long)m->applied,
                (double)elapsed / 1000.0, cpu);
    atomic_store(&m->caught_up, 1);
    /* What was restored sits in the memtables (reads of it walk their skip lists, ~15k
     * instructions a row at 100k rows) and in a level-0 file per bulk round (a read probes each):
     * flushed and merged into one sorted run, then the block cache is filled, on a thread of its
     * own so that commits go on meanwhile (sg_tables_settle). */
    if (m->applied > 0 && !m->settle_started && pthread_create(&m->settle_thread, NULL, settle_main, m) == 0)
        m->settle_started = 1;
    return 0;
}

/* One poll round: read up to the round's bounds, then commit each touched table. Returns 0, or
 * -1 when a commit failed and the positions must be read again. */
static int round_trip(sg_materializer_t *m)
{
    int64_t deadline = 0;
    size_t records = 0, bytes = 0;
    /* A commit that failed meanwhile (a full disk, say) is acted on within a poll. */
    int rc = atomic_load(&m->commit_failed) ? -1 : 0;
    int restoring = !atomic_load(&m->caught_up);
    size_t max_records = restoring ? SG_MAT_RESTORE_ROUND_RECORDS : SG_MAT_ROUND_RECORDS;
    rd_kafka_message_t *msgs[SG_MAT_CONSUME_BATCH];
    while (rc == 0 && records < max_records && bytes < SG_MAT_ROUND_BYTES && !atomic_load(&m->stopping)) {
        int timeout = SG_MAT_POLL_MS;
        if (records > 0) {
            int64_t left = deadline - sg_mono_ms();
            /* Restoring, a round also goes on while the commit thread still writes the one
             * before: reading on costs nothing then, and fewer, larger rounds are written (and
             * ingested) for less. Caught up, it ends on time: reads may wait for its commit. */
            if (left <= 0 && (!restoring || !commit_busy(m)))
                break;
            /* Restoring: wait a little for a bigger batch. Caught up: commit what is here now. */
            timeout = !restoring ? 0 : (int)(left > 0 && left < SG_MAT_CATCHUP_WAIT_MS ? left : SG_MAT_CATCHUP_WAIT_MS);
        }
        /* What is queued already, without a wait; a wait only for the first of it. */
        size_t want = max_records - records < SG_MAT_CONSUME_BATCH ? max_records - records : SG_MAT_CONSUME_BATCH;
        ssize_t n = rd_kafka_consume_batch_queue(m->queue, 0, msgs, want);
        if (n <= 0) {
            if (timeout == 0 || (msgs[0] = rd_kafka_consume_queue(m->queue, timeout)) == NULL)
                break;
            n = 1;
        }
        for (ssize_t i = 0; i < n; ++i) {
            if (records++ == 0)
                deadline = sg_mono_ms() + (restoring ? SG_MAT_RESTORE_ROUND_MS : SG_MAT_ROUND_MS);
            bytes += msgs[i]->len + msgs[i]->key_len;
            if (rc == 0)
                rc = apply(m, msgs[i]); /* after a failure the rest of the batch is dropped with the round */
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    /* Written on the commit thread while the next round is read. A restore's large rounds are
     * bulk: ingested as table files. */
    for (size_t i = 0; rc == 0 && i < m->conf->n_tables; ++i) {
        sg_mat_table_t *state = &m->state[i];
        if (!state->dirty)
            continue;
        state->dirty = 0;
        sg_table_batch_set_bulk(state->batch, restoring);
        sg_table_commit_t *commit = sg_table_batch_detach(state->batch);
        if (commit != NULL && hand_off(m, i, commit) != 0)
            rc = -1;
    }
    return rc;
}

/* Whether the tables' storage takes writes; while it does not, tries to reopen it (the tables
 * stop applying meanwhile: every commit would fail). Logs the changes. */
static int storage_ok(sg_materializer_t *m)
{
    char reason[512];
    if (sg_tables_health(m->tables, reason, sizeof(reason)) == SG_STORAGE_OK)
        return 1;
    if (!m->storage_down) {
        m->storage_down = 1;
        sg_log_error("tables: storage unavailable (%s); tables stop applying and /readyz fails until the data directory "
                     "has room again",
                     reason);
    }
    char err[1024];
    if (sg_tables_recover(m->tables, err, sizeof(err)) != 0) {
        /* Tried every SG_MAT_RETRY_MS: logged when the cause changes, not per attempt. */
        uint64_t cause = sg_log_cause_of(err);
        if (cause != m->recover_cause) {
            m->recover_cause = cause;
            sg_log_warn("tables: storage not back yet: %s", err);
        }
        return 0;
    }
    m->storage_down = 0;
    m->recover_cause = 0;
    sg_log_info("tables: storage available again; resuming from the stored positions");
    return 1;
}

static void *materializer_main(void *arg)
{
    sg_materializer_t *m = arg;
    sg_thread_name("sg-tables");
    m->started_ms = m->logged_ms = sg_mono_ms();
    sg_tables_set_restoring(m->tables, 1); /* until caught up */
    while (!atomic_load(&m->stopping)) {
        drain_commits(m); /* whatever is in flight is written (or dropped) before positions are read */
        if (!storage_ok(m)) {
            destroy_batches(m);
            sg_bridge_sleep(&m->stopping, SG_MAT_RETRY_MS);
            continue;
        }
        if (setup(m) != 0) {
            sg_bridge_sleep(&m->stopping, SG_MAT_RETRY_MS);
            continue;
        }
        check_caught_up(m);
        if (!m->policy_checked)
            policy_check_send(m);
        update_ready(m);
        while (!atomic_load(&m->stopping)) {
            if (round_trip(m) != 0)
                break; /* set up again from the stored positions */
            publish_stats(m);
            update_ready(m);
            if (sg_placement_generation(m->placement) != m->placement_generation)
                break; /* the kept partitions changed: assign them (rounds are committed first, above) */
            if (check_caught_up(m) != 0)
                break; /* a commit failed: set up again from the stored positions */
            policy_check_poll(m);
            int64_t now = sg_mono_ms();
            if (!atomic_load(&m->caught_up) && now - m->logged_ms >= 1000)
                log_progress(m, now);
        }
    }
    drain_commits(m);
    destroy_batches(m);
    if (m->policy_queue != NULL)
        rd_kafka_queue_destroy(m->policy_queue);
    m->policy_queue = NULL;
    return NULL;
}

sg_materializer_t *sg_materializer_create(const sg_conf_t *conf, const char *bootstraps, sg_tables_t *tables, char *err,
                                          size_t errlen)
{
    sg_materializer_t *m = sg_calloc(1, sizeof(*m));
    m->conf = conf;
    m->tables = tables;
    m->state = sg_calloc(conf->n_tables + 1, sizeof(*m->state));
    m->topics = sg_calloc(conf->n_tables + 1, sizeof(*m->topics));
    m->known = sg_calloc(conf->n_tables + 1, sizeof(*m->known));
    m->ready = sg_calloc(conf->n_tables + 1, sizeof(*m->ready));
    pthread_mutex_init(&m->parts_lock, NULL);
    pthread_mutex_init(&m->latest_lock, NULL);
    pthread_cond_init(&m->latest_cond, NULL);
    pthread_mutex_init(&m->commit_lock, NULL);
    pthread_cond_init(&m->commit_cond, NULL);
    for (size_t i = 0; i < conf->n_tables; ++i) {
        /* Every configured table must be open: a typo here would otherwise only show at run time. */
        sg_table_batch_t *probe = sg_table_batch_new(tables, conf->tables[i].name);
        if (probe == NULL) {
            sg_errf(err, errlen, "tables[%zu]: table %s is not open", i, conf->tables[i].name);
            sg_materializer_destroy(m);
            return NULL;
        }
        sg_table_batch_destroy(probe);
        size_t t = 0;
        while (t < m->n_topics && strcmp(m->topics[t].name, conf->tables[i].topic) != 0)
            ++t;
        if (t == m->n_topics) {
            m->topics[t].name = conf->tables[i].topic;
            m->topics[t].m = m;
            m->topics[t].tables = sg_calloc(conf->n_tables, sizeof(*m->topics[t].tables));
            ++m->n_topics;
        }
        m->topics[t].tables[m->topics[t].n_tables++] = i;
    }

    /* Defaults first, so kafka.properties can override any of them. The tables hold the
     * positions (nothing is committed to Kafka); partition EOF events end restore rounds exactly.
     * An offset out of range is reported (auto.offset.reset=error), never skipped: see apply(). */
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate", err, errlen);
    if (rkconf == NULL) {
        sg_materializer_destroy(m);
        return NULL;
    }
    if (sg_kafka_conf_assigning_consumer(rkconf, "streamgate-tables", 1, err, errlen) ||
        sg_kafka_conf_set(rkconf, "auto.offset.reset", "error", err, errlen) ||
        sg_kafka_conf_set(rkconf, "queued.min.messages", SG_MAT_QUEUED_MIN_MESSAGES, err, errlen) ||
        sg_kafka_conf_apply(rkconf, conf, err, errlen)) {
        rd_kafka_conf_destroy(rkconf);
        sg_materializer_destroy(m);
        return NULL;
    }
    if ((m->rk = sg_kafka_new(RD_KAFKA_CONSUMER, rkconf, "kafka table consumer", err, errlen)) == NULL) {
        sg_materializer_destroy(m);
        return NULL;
    }
    rd_kafka_poll_set_consumer(m->rk);
    m->queue = rd_kafka_queue_get_consumer(m->rk);
    return m;
}

static size_t topic_of_table(const sg_materializer_t *m, size_t table_index)
{
    for (size_t t = 0; t < m->n_topics; ++t)
        if (strcmp(m->topics[t].name, m->conf->tables[table_index].topic) == 0)
            return t;
    return SIZE_MAX;
}

/* Answers every queued "latest" job with one round of ListOffsets per topic asked about. */
static void answer_latest(sg_materializer_t *m, sg_mat_latest_t *jobs)
{
    for (size_t t = 0; t < m->n_topics; ++t) {
        int asked = 0;
        for (sg_mat_latest_t *job = jobs; job != NULL && !asked; job = job->next)
            asked = job->topic == t;
        if (!asked)
            continue;
        pthread_mutex_lock(&m->parts_lock);
        size_t n = m->known[t].n;
        int32_t *partitions = sg_calloc(n + 1, sizeof(*partitions));
        int64_t *highs = sg_calloc(n + 1, sizeof(*highs));
        if (n > 0)
            memcpy(partitions, m->known[t].partitions, n * sizeof(*partitions));
        pthread_mutex_unlock(&m->parts_lock);
        int rc = n > 0 ? 0 : -1;
        for (size_t i = 0; rc == 0 && i < n; ++i) {
            int64_t low;
            if (rd_kafka_query_watermark_offsets(m->rk, m->topics[t].name, partitions[i], &low, &highs[i],
                                                 SG_MAT_LATEST_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
                rc = -1;
        }
        for (sg_mat_latest_t *job = jobs; job != NULL; job = job->next)
            if (job->topic == t)
                job->cb(job->ctx, rc, partitions, highs, rc == 0 ? n : 0);
        free(partitions);
        free(highs);
    }
    while (jobs != NULL) {
        sg_mat_latest_t *next = jobs->next;
        free(jobs);
        jobs = next;
    }
}

static void *latest_main(void *arg)
{
    sg_materializer_t *m = arg;
    sg_thread_name("sg-tbl-latest");
    pthread_mutex_lock(&m->latest_lock);
    for (;;) {
        while (m->latest_jobs == NULL && !atomic_load(&m->stopping))
            pthread_cond_wait(&m->latest_cond, &m->latest_lock);
        sg_mat_latest_t *jobs = m->latest_jobs;
        m->latest_jobs = NULL;
        if (jobs == NULL)
            break; /* stopping, nothing left to answer */
        /* Every job taken here arrived before this round's requests are sent: the watermarks
         * it gets are at least those at its arrival. */
        pthread_mutex_unlock(&m->latest_lock);
        if (atomic_load(&m->stopping)) {
            while (jobs != NULL) {
                sg_mat_latest_t *next = jobs->next;
                jobs->cb(jobs->ctx, -1, NULL, NULL, 0);
                free(jobs);
                jobs = next;
            }
        } else {
            answer_latest(m, jobs);
        }
        pthread_mutex_lock(&m->latest_lock);
    }
    pthread_mutex_unlock(&m->latest_lock);
    return NULL;
}

int sg_materializer_query_latest(sg_materializer_t *m, size_t table_index, sg_materializer_latest_cb cb, void *ctx)
{
    size_t t = table_index < m->conf->n_tables ? topic_of_table(m, table_index) : SIZE_MAX;
    if (t == SIZE_MAX || !m->latest_started || atomic_load(&m->stopping))
        return -1;
    sg_mat_latest_t *job = sg_calloc(1, sizeof(*job));
    job->topic = t;
    job->cb = cb;
    job->ctx = ctx;
    pthread_mutex_lock(&m->latest_lock);
    job->next = m->latest_jobs;
    m->latest_jobs = job;
    pthread_cond_signal(&m->latest_cond);
    pthread_mutex_unlock(&m->latest_lock);
    return 0;
}

int sg_materializer_start(sg_materializer_t *m, sg_materializer_progress_cb progress_cb, void *ctx, char *err, size_t errlen)
{
    if (m->thread_started) {
        sg_errf(err, errlen, "tables: the materializer is already started");
        return -1;
    }
    m->progress_cb = progress_cb;
    m->ctx = ctx;
    if (m->conf->n_tables == 0) {
        atomic_store(&m->caught_up, 1);
        return 0;
    }
    int rc = pthread_create(&m->commit_thread, NULL, commit_main, m);
    if (rc != 0) {
        sg_errf(err, errlen, "tables: cannot start the commit thread: %s", strerror(rc));
        return -1;
    }
    m->commit_started = 1;
    rc = pthread_create(&m->thread, NULL, materializer_main, m);
    if (rc != 0) {
        sg_errf(err, errlen, "tables: cannot start the materializer thread: %s", strerror(rc));
        return -1;
    }
    m->thread_started = 1;
    if ((rc = pthread_create(&m->latest_thread, NULL, latest_main, m)) != 0) {
        sg_errf(err, errlen, "tables: cannot start the watermark query thread: %s", strerror(rc));
        return -1;
    }
    m->latest_started = 1;
    return 0;
}

void sg_materializer_set_placement(sg_materializer_t *m, sg_placement_t *placement)
{
    m->placement = placement;
}

int sg_materializer_partition_ready(const sg_materializer_t *m, size_t table_index, int32_t partition)
{
    if (table_index >= m->conf->n_tables || partition < 0 || partition >= SG_PLACEMENT_MAX_PARTITIONS)
        return 0;
    return atomic_load(&m->ready[table_index][partition]);
}

void sg_materializer_set_registry(sg_materializer_t *m, sg_registry_t *registry)
{
    m->registry = registry;
}

unsigned long long sg_materializer_skipped(const sg_materializer_t *m)
{
    return atomic_load(&m->skipped);
}

int sg_materializer_caught_up(const sg_materializer_t *m)
{
    /* A table whose storage takes no writes is not keeping up with its topic. */
    return atomic_load(&m->caught_up) && (m->tables == NULL || sg_tables_health(m->tables, NULL, 0) == SG_STORAGE_OK);
}

unsigned long long sg_materializer_rebuilds(const sg_materializer_t *m)
{
    return atomic_load(&m->rebuilds);
}

void sg_materializer_destroy(sg_materializer_t *m)
{
    if (m == NULL)
        return;
    atomic_store(&m->stopping, 1);
    if (m->thread_started)
        pthread_join(m->thread, NULL);
    if (m->settle_started)
        pthread_join(m->settle_thread, NULL);
    if (m->commit_started) {
        pthread_mutex_lock(&m->commit_lock);
        m->commit_stopping = 1;
        pthread_cond_broadcast(&m->commit_cond);
        pthread_mutex_unlock(&m->commit_lock);
        pthread_join(m->commit_thread, NULL);
    }
    if (m->latest_started) {
        pthread_mutex_lock(&m->latest_lock);
        pthread_cond_signal(&m->latest_cond);
        pthread_mutex_unlock(&m->latest_lock);
        pthread_join(m->latest_thread, NULL);
    }
    destroy_batches(m);
    if (m->queue != NULL)
        rd_kafka_queue_destroy(m->queue);
    if (m->rk != NULL) {
        rd_kafka_consumer_close(m->rk);
        rd_kafka_destroy(m->rk);
    }
    for (size_t t = 0; t < m->n_topics; ++t) {
        free(m->topics[t].tables);
        if (m->known != NULL)
            free(m->known[t].partitions);
    }
    if (m->known != NULL) {
        pthread_mutex_destroy(&m->parts_lock);
        pthread_mutex_destroy(&m->latest_lock);
        pthread_cond_destroy(&m->latest_cond);
        pthread_mutex_destroy(&m->commit_lock);
        pthread_cond_destroy(&m->commit_cond);
    }
    free(m->known);
    free((void *)m->ready);
    free(m->topics);
    free(m->state);
    free(m->parts);
    free(m);
}
