/*
 * Placement of partitioned tables (sg_placement.h): the consumer groups that decide ownership,
 * the owners topic that tells every instance who owns what and where to reach it, and the
 * standby ring.
 *
 * The group consumers read nothing: a partition assigned to this instance is paused at once, and
 * the materializer reads it (with the standbys) through its own assigning consumer, so promotion
 * from standby to owner costs nothing and a revoked partition may stay as a standby. The group's
 * assignment is only what this instance owns. Every decision that other instances depend on is
 * a record in the owners topic; the fold of that topic is the same on every instance up to the
 * lease clock (wall clock: instances' clocks must agree within a fraction of the lease).
 *
 * One thread serves every client here and sleeps until a queue has something or 100 ms pass; the
 * loops read the owner map under `lock`, copying out.
 */
#include "bridge_int.h"
#include "sg_placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define SG_PL_POLL_MS 100
#define SG_PL_METADATA_TIMEOUT_MS 2000
#define SG_PL_RETRY_MS 500
#define SG_PL_PUBLISH_EVERY_MS (SG_PLACEMENT_LEASE_MS / 3)
#define SG_PL_NAME_MAX 136
/* A crashed instance's partitions move after the session timeout: the broker's minimum
 * (group.min.session.timeout.ms, 6 s by default) keeps failover short. */
#define SG_PL_SESSION_TIMEOUT_MS 6000

typedef struct {
    char instance[SG_PL_NAME_MAX];
    char url[SG_PLACEMENT_URL_MAX];
    int64_t expires_ms; /* wall clock */
    int64_t offset;     /* of its latest record */
    uint8_t owns[SG_PLACEMENT_MAX_PARTITIONS];
} sg_pl_member_t;

typedef struct {
    sg_placement_t *placement;
    size_t table_index;
    const char *name, *topic;
    char group_id[256];
    rd_kafka_t *group;
    rd_kafka_queue_t *group_queue;
    int subscribed;
    int assigned_once; /* the group has given this instance its (possibly empty) assignment */
    int unassigned;    /* joined, and still without a first assignment at shutdown (see there) */
    int dirty;         /* the owned set changed: publish now */
    atomic_int n_partitions;
    _Atomic uint8_t owned[SG_PLACEMENT_MAX_PARTITIONS]; /* written by the thread (rebalance) */
    _Atomic uint8_t keeps[SG_PLACEMENT_MAX_PARTITIONS]; /* owned or standby */
    /* under placement->lock */
    uint8_t standby[SG_PLACEMENT_MAX_PARTITIONS];
    int16_t owner_of[SG_PLACEMENT_MAX_PARTITIONS];   /* index into members, -1: none known */
    int16_t standby_of[SG_PLACEMENT_MAX_PARTITIONS]; /* another instance keeping it as a standby, -1: none */
    sg_pl_member_t *members;
    size_t n_members;
} sg_pl_table_t;

struct st_sg_placement_t {
    const sg_conf_t *conf;
    const char *instance;
    char advertise[SG_PLACEMENT_URL_MAX];
    char topic[256];
    sg_pl_table_t *tables; /* one per partitioned table */
    size_t n_tables;
    size_t *slot_of; /* conf table index -> index into tables, SIZE_MAX: not partitioned */
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_t *producer_topic;
    rd_kafka_queue_t *producer_queue, *consumer_queue;
    sg_wake_t wake;
    pthread_t thread;
    int thread_started;
    atomic_int stopping;
    int shut;
    pthread_mutex_t lock;
    atomic_ullong generation;
    _Atomic(const char *) not_ready;
    int set_up;
    int created;
    int64_t next_offset, start_high; /* owners topic [0] */
    int64_t next_publish_ms;
    sg_log_once_t ignored_once;
};

int32_t sg_placement_partition_of(const void *key, size_t keylen, int32_t n_partitions)
{
    /* librdkafka's own murmur2 partitioner (Kafka's default for keyed records): the same code
     * the producer runs with partitioner=murmur2_random. It does not use the topic for a key. */
    return rd_kafka_msg_partitioner_murmur2(NULL, key, keylen, n_partitions, NULL, NULL);
}

void sg_placement_topic(const sg_conf_t *conf, char *topic)
{
    snprintf(topic, 256, "_streamgate.%s.owners", conf->deployment.name);
}

/* ---- the owner map ------------------------------------------------------------------------- */

static sg_pl_table_t *table_named(sg_placement_t *placement, const char *name, size_t len)
{
    for (size_t i = 0; i < placement->n_tables; ++i)
        if (strlen(placement->tables[i].name) == len && memcmp(placement->tables[i].name, name, len) == 0)
            return &placement->tables[i];
    return NULL;
}

static sg_pl_member_t *member_named(sg_pl_table_t *table, const char *instance)
{
    for (size_t i = 0; i < table->n_members; ++i)
        if (strcmp(table->members[i].instance, instance) == 0)
            return &table->members[i];
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Owners of every partition, the standby ring and the kept set, from the fold and the clock.
 * Bumps the generation when the kept set changed. Placement thread, under no lock. */
static void recompute(sg_placement_t *placement)
{
    int64_t now = sg_now_ms();
    int changed = 0;
    pthread_mutex_lock(&placement->lock);
    for (size_t t = 0; t < placement->n_tables; ++t) {
        sg_pl_table_t *table = &placement->tables[t];
        int32_t n = atomic_load(&table->n_partitions);
        const int standbys = placement->conf->tables[table->table_index].standbys;
        int64_t best[SG_PLACEMENT_MAX_PARTITIONS];
        for (int32_t p = 0; p < n; ++p) {
            table->owner_of[p] = -1;
            table->standby_of[p] = -1;
            best[p] = -1;
            table->standby[p] = 0;
        }
        const char **live = sg_calloc(table->n_members + 2, sizeof(*live));
        size_t n_live = 0;
        live[n_live++] = placement->instance;
        for (size_t m = 0; m < table->n_members; ++m) {
            const sg_pl_member_t *member = &table->members[m];
            if (member->expires_ms <= now || strcmp(member->instance, placement->instance) == 0)
                continue;
            live[n_live++] = member->instance;
            for (int32_t p = 0; p < n; ++p)
                if (member->owns[p] && member->offset > best[p]) {
                    best[p] = member->offset;
                    table->owner_of[p] = (int16_t)m;
                }
        }
        qsort(live, n_live, sizeof(*live), by_name);
        size_t self = 0;
        while (self < n_live && strcmp(live[self], placement->instance) != 0)
            ++self;
        for (int k = 1; k <= standbys && (size_t)k < n_live; ++k) {
            sg_pl_member_t *next = member_named(table, live[(self + (size_t)k) % n_live]);
            size_t index = next != NULL ? (size_t)(next - table->members) : SIZE_MAX;
            for (int32_t p = 0; p < n; ++p)
                if (table->owner_of[p] >= 0 && (size_t)table->owner_of[p] == index)
                    table->standby[p] = 1;
        }
        /* Who else keeps each partition: the instances just before its owner in the ring. */
        for (size_t at = 0; at < n_live && standbys > 0; ++at) {
            const sg_pl_member_t *owner = member_named(table, live[at]);
            if (owner == NULL || strcmp(live[at], placement->instance) == 0)
                continue;
            for (int k = 1; k <= standbys && (size_t)k < n_live; ++k) {
                const char *name = live[(at + n_live - (size_t)k) % n_live];
                sg_pl_member_t *holder = strcmp(name, placement->instance) != 0 ? member_named(table, name) : NULL;
                if (holder == NULL)
                    continue;
                for (int32_t p = 0; p < n; ++p)
                    if (table->owner_of[p] >= 0 && table->members + table->owner_of[p] == owner && table->standby_of[p] < 0)
                        table->standby_of[p] = (int16_t)(holder - table->members);
                break;
            }
        }
        free(live);
        for (int32_t p = 0; p < n; ++p) {
            uint8_t keep = atomic_load(&table->owned[p]) || table->standby[p];
            if (atomic_exchange(&table->keeps[p], keep) != keep)
                changed = 1;
        }
    }
    pthread_mutex_unlock(&placement->lock);
    if (changed)
        atomic_fetch_add(&placement->generation, 1);
}

/* One record of the owners topic: key "<table>/<instance>", a JSON value or a tombstone. */
static void fold(sg_placement_t *placement, const rd_kafka_message_t *msg)
{
    const char *key = msg->key;
    const char *slash = key != NULL ? memchr(key, '/', msg->key_len) : NULL;
    size_t instance_len = slash != NULL ? msg->key_len - (size_t)(slash + 1 - key) : 0;
    sg_pl_table_t *table = slash != NULL ? table_named(placement, key, (size_t)(slash - key)) : NULL;
    if (table == NULL || instance_len == 0 || instance_len >= SG_PL_NAME_MAX)
        return; /* another table's (a config this instance does not have), or not ours */
    char instance[SG_PL_NAME_MAX];
    memcpy(instance, slash + 1, instance_len);
    instance[instance_len] = '\0';
    json_t *doc = msg->payload != NULL ? json_loadb(msg->payload, msg->len, 0, NULL) : NULL;
    const char *url = doc != NULL ? json_string_value(json_object_get(doc, "url")) : NULL;
    json_t *partitions = doc != NULL ? json_object_get(doc, "partitions") : NULL;
    json_int_t expires = doc != NULL ? json_integer_value(json_object_get(doc, "expires_ms")) : 0;
    if (msg->payload != NULL && (url == NULL || strlen(url) >= SG_PLACEMENT_URL_MAX || !json_is_array(partitions))) {
        if (sg_log_once(&placement->ignored_once, 1))
            sg_log_warn("placement: %s offset %lld: not an ownership record (ignored; logged once)", placement->topic,
                        (long long)msg->offset);
        json_decref(doc);
        return;
    }
    pthread_mutex_lock(&placement->lock);
    sg_pl_member_t *member = member_named(table, instance);
    if (msg->payload == NULL) {
        /* Kept, expired: the owner map holds indices into members. */
        if (member != NULL) {
            member->expires_ms = 0;
            memset(member->owns, 0, sizeof(member->owns));
        }
    } else {
        if (member == NULL) {
            table->members = sg_reallocarray(table->members, table->n_members + 1, sizeof(*table->members));
            member = &table->members[table->n_members++];
            memset(member, 0, sizeof(*member));
            snprintf(member->instance, sizeof(member->instance), "%s", instance);
        }
        snprintf(member->url, sizeof(member->url), "%s", url);
        member->expires_ms = expires;
        member->offset = msg->offset;
        memset(member->owns, 0, sizeof(member->owns));
        size_t i;
        json_t *value;
        json_array_foreach(partitions, i, value)
        {
            json_int_t p = json_integer_value(value);
            if (p >= 0 && p < SG_PLACEMENT_MAX_PARTITIONS)
                member->owns[p] = 1;
        }
    }
    pthread_mutex_unlock(&placement->lock);
    json_decref(doc);
}

/* ---- publishing ---------------------------------------------------------------------------- */

static void publish(sg_placement_t *placement, sg_pl_table_t *table, int tombstone)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", table->name, placement->instance);
    char *value = NULL;
    if (!tombstone) {
        json_t *partitions = json_array();
        int32_t n = atomic_load(&table->n_partitions);
        for (int32_t p = 0; p < n; ++p)
            if (atomic_load(&table->owned[p]))
                json_array_append_new(partitions, json_integer(p));
        json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:o, s:I}", "v", 1, "table", table->name, "instance", placement->instance,
                                "url", placement->advertise, "partitions", partitions, "expires_ms",
                                (json_int_t)(sg_now_ms() + SG_PLACEMENT_LEASE_MS));
        value = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (value == NULL)
            sg_oom();
    }
    size_t len = value != NULL ? strlen(value) : 0;
    rd_kafka_resp_err_t rkerr =
        rd_kafka_producev(placement->producer, RD_KAFKA_V_RKT(placement->producer_topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
                          RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_END);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        sg_log_warn("placement: cannot publish the ownership of table %s: %s (retried with the lease)", table->name,
                    rd_kafka_err2str(rkerr));
    free(value);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        sg_log_warn("placement: an ownership record was not acknowledged: %s (published again with the lease)",
                    rd_kafka_err2str(msg->err));
}

/* ---- the groups ---------------------------------------------------------------------------- */

static void set_owned(sg_pl_table_t *table, const rd_kafka_topic_partition_list_t *parts, uint8_t owned)
{
    for (int i = 0; i < parts->cnt; ++i) {
        int32_t p = parts->elems[i].partition;
        if (p >= 0 && p < SG_PLACEMENT_MAX_PARTITIONS)
            atomic_store(&table->owned[p], owned);
    }
}

/* Placement thread (inside rd_kafka_consumer_poll): the group moved partitions to or from this
 * instance. Assigned partitions are paused at once: the materializer reads them. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sg_pl_table_t *table = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; ++i)
            parts->elems[i].offset = RD_KAFKA_OFFSET_END;
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        rd_kafka_pause_partitions(rk, parts);
        set_owned(table, parts, 1);
        table->assigned_once = 1;
        sg_log_info("placement: table %s: %d partition(s) assigned to this instance", table->name, parts->cnt);
    } else {
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            rd_kafka_assign(rk, NULL);
            memset((void *)table->owned, 0, sizeof(table->owned));
        }
        set_owned(table, parts, 0);
        sg_log_info("placement: table %s: %d partition(s) %s", table->name, parts->cnt,
                    err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? "revoked" : rd_kafka_err2str(err));
    }
    if (error != NULL) {
        sg_log_warn("placement: table %s: %s", table->name, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    table->dirty = 1;
}

static int make_group(sg_placement_t *placement, sg_pl_table_t *table, const char *bootstraps, char *err, size_t errlen)
{
    snprintf(table->group_id, sizeof(table->group_id), "_streamgate.%s.%s", placement->conf->deployment.name, table->name);
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate-placement", err, errlen);
    if (rkconf == NULL)
        return -1;
    char session_ms[16];
    snprintf(session_ms, sizeof(session_ms), "%d", SG_PL_SESSION_TIMEOUT_MS);
    if (sg_kafka_conf_set(rkconf, "group.id", table->group_id, err, errlen) ||
        sg_kafka_conf_set(rkconf, "partition.assignment.strategy", "cooperative-sticky", err, errlen) ||
        sg_kafka_conf_set(rkconf, "enable.auto.commit", "false", err, errlen) ||
        sg_kafka_conf_set(rkconf, "enable.auto.offset.store", "false", err, errlen) ||
        sg_kafka_conf_set(rkconf, "session.timeout.ms", session_ms, err, errlen) ||
        sg_kafka_conf_set(rkconf, "heartbeat.interval.ms", "1000", err, errlen) ||
        sg_kafka_conf_apply(rkconf, placement->conf, err, errlen)) {
        rd_kafka_conf_destroy(rkconf);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(rkconf, on_rebalance);
    rd_kafka_conf_set_opaque(rkconf, table);
    if ((table->group = sg_kafka_new(RD_KAFKA_CONSUMER, rkconf, "placement group consumer", err, errlen)) == NULL)
        return -1;
    rd_kafka_poll_set_consumer(table->group);
    table->group_queue = rd_kafka_queue_get_consumer(table->group);
    rd_kafka_queue_cb_event_enable(table->group_queue, sg_wake_on_queue_event, &placement->wake);
    return 0;
}

/* ---- the thread ---------------------------------------------------------------------------- */

static int only_partition_zero(void *ctx, const char *topic, int32_t partition)
{
    return partition == 0;
}

static int setup(sg_placement_t *placement)
{
    char err[512];
    if (!placement->created && !placement->conf->kafka.embedded) {
        static const char *const compacted[] = {"cleanup.policy", "compact", NULL};
        if (sg_kafka_ensure_topic(placement->producer, "placement", placement->topic, 1, compacted) != 0)
            return -1;
    }
    placement->created = 1;
    sg_assign_topic_t owners;
    if (sg_assign_describe(placement->consumer, placement->topic, only_partition_zero, NULL, SG_PL_METADATA_TIMEOUT_MS,
                           &placement->stopping, &owners, err, sizeof(err)) != 0) {
        sg_log_warn("placement: %s (retrying)", err);
        return -1;
    }
    for (size_t p = 0; p < owners.n_parts; ++p)
        if (owners.parts[p].partition == 0) {
            placement->next_offset = owners.parts[p].low;
            placement->start_high = owners.parts[p].high;
            owners.parts[p].start = RD_KAFKA_OFFSET_BEGINNING;
        }
    int rc = sg_assign_apply(placement->consumer, &owners, 1, err, sizeof(err));
    sg_assign_dispose(&owners, 1);
    if (rc != 0) {
        sg_log_warn("placement: %s (retrying)", err);
        return -1;
    }
    for (size_t t = 0; t < placement->n_tables; ++t) {
        sg_pl_table_t *table = &placement->tables[t];
        sg_assign_topic_t topic;
        if (sg_assign_describe(placement->consumer, table->topic, only_partition_zero, NULL, SG_PL_METADATA_TIMEOUT_MS,
                               &placement->stopping, &topic, err, sizeof(err)) != 0) {
            sg_log_warn("placement: table %s: %s (retrying)", table->name, err);
            return -1;
        }
        size_t n = topic.n_parts;
        sg_assign_dispose(&topic, 1);
        if (n > SG_PLACEMENT_MAX_PARTITIONS) {
            sg_log_error("placement: table %s: topic %s has %zu partitions; a partitioned table's topic may have at most %d",
                         table->name, table->topic, n, SG_PLACEMENT_MAX_PARTITIONS);
            return -1;
        }
        atomic_store(&table->n_partitions, (int32_t)n);
        if (!table->subscribed) {
            rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(list, table->topic, RD_KAFKA_PARTITION_UA);
            rd_kafka_resp_err_t rkerr = rd_kafka_subscribe(table->group, list);
            rd_kafka_topic_partition_list_destroy(list);
            if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
                sg_log_warn("placement: table %s: subscribe: %s (retrying)", table->name, rd_kafka_err2str(rkerr));
                return -1;
            }
            table->subscribed = 1;
        }
    }
    return 0;
}

static void consume_owners(sg_placement_t *placement)
{
    for (int i = 0; i < 10000; ++i) {
        rd_kafka_message_t *msg = rd_kafka_consume_queue(placement->consumer_queue, 0);
        if (msg == NULL)
            return;
        if (msg->partition != 0 || strcmp(rd_kafka_topic_name(msg->rkt), placement->topic) != 0) {
            /* not ours */
        } else if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (msg->offset > placement->next_offset)
                placement->next_offset = msg->offset;
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sg_log_warn("placement: %s", rd_kafka_message_errstr(msg));
        } else if (msg->offset >= placement->next_offset) {
            fold(placement, msg);
            placement->next_offset = msg->offset + 1;
        }
        rd_kafka_message_destroy(msg);
    }
    sg_wake(&placement->wake);
}

static const char *why_not_ready(const sg_placement_t *placement)
{
    if (!placement->set_up)
        return "the partitioned tables' owners topic is not assigned yet";
    if (placement->next_offset < placement->start_high)
        return "the partitioned tables' owners topic is not read up to where it was at start yet";
    for (size_t t = 0; t < placement->n_tables; ++t)
        if (!placement->tables[t].assigned_once)
            return "a partitioned table's consumer group has not assigned this instance its partitions yet";
    return NULL;
}

static void *placement_main(void *arg)
{
    sg_placement_t *placement = arg;
    sg_thread_name("sg-placement");
    while (!atomic_load(&placement->stopping)) {
        if (!placement->set_up) {
            if (setup(placement) != 0) {
                sg_bridge_sleep(&placement->stopping, SG_PL_RETRY_MS);
                continue;
            }
            placement->set_up = 1;
        }
        sg_wake_wait(&placement->wake, &placement->stopping, SG_PL_POLL_MS);
        for (size_t t = 0; t < placement->n_tables; ++t) {
            rd_kafka_message_t *msg;
            while ((msg = rd_kafka_consumer_poll(placement->tables[t].group, 0)) != NULL) {
                if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    sg_log_warn("placement: table %s: %s", placement->tables[t].name, rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
            }
        }
        rd_kafka_poll(placement->producer, 0);
        consume_owners(placement);
        int64_t now = sg_mono_ms();
        for (size_t t = 0; t < placement->n_tables; ++t) {
            sg_pl_table_t *table = &placement->tables[t];
            if ((table->dirty || now >= placement->next_publish_ms) && table->assigned_once) {
                publish(placement, table, 0);
                table->dirty = 0;
            }
        }
        if (now >= placement->next_publish_ms)
            placement->next_publish_ms = now + SG_PL_PUBLISH_EVERY_MS;
        recompute(placement);
        atomic_store(&placement->not_ready, why_not_ready(placement));
    }
    return NULL;
}

/* ---- lifecycle and queries ----------------------------------------------------------------- */

sg_placement_t *sg_placement_create(const sg_conf_t *conf, const char *bootstraps, const char *instance, char *err,
                                    size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; i < conf->n_tables; ++i)
        n += conf->tables[i].placement == SG_PLACEMENT_PARTITIONED;
    if (n == 0) {
        if (errlen > 0)
            err[0] = '\0';
        return NULL;
    }
    sg_placement_t *placement = sg_calloc(1, sizeof(*placement));
    placement->conf = conf;
    placement->instance = instance;
    sg_placement_topic(conf, placement->topic);
    sg_wake_init(&placement->wake);
    pthread_mutex_init(&placement->lock, NULL);
    atomic_store(&placement->not_ready, "the placement thread has not started");
    placement->tables = sg_calloc(n, sizeof(*placement->tables));
    placement->slot_of = sg_calloc(conf->n_tables + 1, sizeof(*placement->slot_of));
    for (size_t i = 0; i < conf->n_tables; ++i) {
        placement->slot_of[i] = SIZE_MAX;
        if (conf->tables[i].placement != SG_PLACEMENT_PARTITIONED)
            continue;
        sg_pl_table_t *table = &placement->tables[placement->n_tables];
        placement->slot_of[i] = placement->n_tables++;
        table->placement = placement;
        table->table_index = i;
        table->name = conf->tables[i].name;
        table->topic = conf->tables[i].topic;
        for (size_t p = 0; p < SG_PLACEMENT_MAX_PARTITIONS; ++p)
            table->owner_of[p] = table->standby_of[p] = -1;
        if (make_group(placement, table, bootstraps, err, errlen) != 0) {
            sg_placement_destroy(placement);
            return NULL;
        }
    }
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate-placement", err, errlen);
    if (rkconf == NULL || sg_kafka_conf_durable_producer(rkconf, 5000, err, errlen) ||
        sg_kafka_conf_apply(rkconf, conf, err, errlen)) {
        if (rkconf != NULL)
            rd_kafka_conf_destroy(rkconf);
        sg_placement_destroy(placement);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
    if ((placement->producer = sg_kafka_new(RD_KAFKA_PRODUCER, rkconf, "placement producer", err, errlen)) == NULL) {
        sg_placement_destroy(placement);
        return NULL;
    }
    placement->producer_topic = rd_kafka_topic_new(placement->producer, placement->topic, NULL);
    placement->producer_queue = rd_kafka_queue_get_main(placement->producer);
    rd_kafka_queue_cb_event_enable(placement->producer_queue, sg_wake_on_queue_event, &placement->wake);
    if ((rkconf = sg_kafka_conf_new(bootstraps, "streamgate-placement", err, errlen)) == NULL ||
        sg_kafka_conf_assigning_consumer(rkconf, "streamgate-placement", 1, err, errlen) ||
        sg_kafka_conf_set(rkconf, "auto.offset.reset", "earliest", err, errlen) || sg_kafka_conf_apply(rkconf, conf, err, errlen)) {
        if (rkconf != NULL)
            rd_kafka_conf_destroy(rkconf);
        sg_placement_destroy(placement);
        return NULL;
    }
    if ((placement->consumer = sg_kafka_new(RD_KAFKA_CONSUMER, rkconf, "placement consumer", err, errlen)) == NULL) {
        sg_placement_destroy(placement);
        return NULL;
    }
    rd_kafka_poll_set_consumer(placement->consumer);
    placement->consumer_queue = rd_kafka_queue_get_consumer(placement->consumer);
    rd_kafka_queue_cb_event_enable(placement->consumer_queue, sg_wake_on_queue_event, &placement->wake);
    return placement;
}

int sg_placement_start(sg_placement_t *placement, const char *advertise, char *err, size_t errlen)
{
    if (placement->thread_started)
        return sg_errf(err, errlen, "placement: already started");
    snprintf(placement->advertise, sizeof(placement->advertise), "%s", advertise);
    int rc = pthread_create(&placement->thread, NULL, placement_main, placement);
    if (rc != 0)
        return sg_errf(err, errlen, "cannot start the placement thread: %s", strerror(rc));
    placement->thread_started = 1;
    return 0;
}

static sg_pl_table_t *slot(const sg_placement_t *placement, size_t table_index)
{
    if (placement == NULL || table_index >= placement->conf->n_tables || placement->slot_of[table_index] == SIZE_MAX)
        return NULL;
    return &placement->tables[placement->slot_of[table_index]];
}

int sg_placement_is_partitioned(const sg_placement_t *placement, size_t table_index)
{
    return slot(placement, table_index) != NULL;
}

uint64_t sg_placement_generation(const sg_placement_t *placement)
{
    return placement != NULL ? atomic_load(&placement->generation) : 0;
}

int sg_placement_keeps(sg_placement_t *placement, size_t table_index, int32_t partition)
{
    sg_pl_table_t *table = slot(placement, table_index);
    if (table == NULL)
        return 1; /* a global table keeps everything */
    return partition >= 0 && partition < SG_PLACEMENT_MAX_PARTITIONS && atomic_load(&table->keeps[partition]);
}

int32_t sg_placement_partitions(sg_placement_t *placement, size_t table_index)
{
    sg_pl_table_t *table = slot(placement, table_index);
    return table != NULL ? atomic_load(&table->n_partitions) : 0;
}

int sg_placement_partition(sg_placement_t *placement, size_t table_index, int32_t partition, sg_placement_route_t *out)
{
    sg_pl_table_t *table = slot(placement, table_index);
    memset(out, 0, sizeof(*out));
    out->partition = partition;
    if (table == NULL || partition < 0 || partition >= atomic_load(&table->n_partitions))
        return -1;
    pthread_mutex_lock(&placement->lock);
    if (atomic_load(&table->owned[partition]))
        out->role = SG_ROLE_OWNER;
    else if (table->standby[partition])
        out->role = SG_ROLE_STANDBY;
    int16_t owner = table->owner_of[partition];
    if (out->role != SG_ROLE_OWNER && owner >= 0 && (size_t)owner < table->n_members &&
        table->members[owner].expires_ms > sg_now_ms()) {
        snprintf(out->owner_url, sizeof(out->owner_url), "%s", table->members[owner].url);
        snprintf(out->owner, sizeof(out->owner), "%s", table->members[owner].instance);
    }
    int16_t standby = table->standby_of[partition];
    if (out->role != SG_ROLE_OWNER && standby >= 0 && (size_t)standby < table->n_members &&
        table->members[standby].expires_ms > sg_now_ms()) {
        snprintf(out->standby_url, sizeof(out->standby_url), "%s", table->members[standby].url);
        snprintf(out->standby, sizeof(out->standby), "%s", table->members[standby].instance);
    }
    pthread_mutex_unlock(&placement->lock);
    return 0;
}

int sg_placement_route(sg_placement_t *placement, size_t table_index, const void *key, size_t keylen, sg_placement_route_t *out)
{
    int32_t n = sg_placement_partitions(placement, table_index);
    if (n <= 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return sg_placement_partition(placement, table_index, sg_placement_partition_of(key, keylen, n), out);
}

const char *sg_placement_not_ready_because(const sg_placement_t *placement)
{
    return placement != NULL ? atomic_load(&placement->not_ready) : NULL;
}

/* librdkafka 2.0 aborts (an assertion in rd_kafka_sticky_assignor_state_destroy) when it destroys
 * a cooperative-sticky member whose group has answered its JoinGroup but not yet its first
 * SyncGroup: the assignor's state only exists from the first assignment on (librdkafka#4312,
 * fixed in 2.3.0), and a closing consumer drops the assignment that would create it. So a table
 * whose group has a member id and no first assignment is served here until the assignment comes,
 * for up to the session timeout (after which the coordinator has given up on this member anyway).
 * If it still has none, its consumer is closed but never destroyed (the process is ending; its
 * queue's wake-up callback is turned off, as it names this placement), and that is logged. One
 * that never joined (no member id) closes as usual: librdkafka ignores a JoinGroup answer that
 * arrives once it is closing. */
static void await_first_assignment(sg_pl_table_t *table)
{
    char *member = rd_kafka_memberid(table->group);
    int joined = member != NULL && member[0] != '\0';
    if (member != NULL)
        rd_kafka_mem_free(table->group, member);
    if (!joined)
        return;
    sg_log_info("placement: table %s: the group has not assigned this instance its partitions yet; waiting up to %d ms "
                "for that before leaving it (librdkafka 2.0 aborts destroying a member in between)",
                table->name, SG_PL_SESSION_TIMEOUT_MS);
    int64_t until = sg_mono_ms() + SG_PL_SESSION_TIMEOUT_MS;
    while (!table->assigned_once && sg_mono_ms() < until) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(table->group, SG_PL_POLL_MS);
        if (msg != NULL)
            rd_kafka_message_destroy(msg);
    }
    if (!table->assigned_once) {
        table->unassigned = 1;
        sg_log_warn("placement: table %s: no first assignment in %d ms; its group consumer is closed and left "
                    "undestroyed, as librdkafka 2.0 would abort destroying it (librdkafka#4312)",
                    table->name, SG_PL_SESSION_TIMEOUT_MS);
    }
}

void sg_placement_shutdown(sg_placement_t *placement, int timeout_ms)
{
    if (placement == NULL || placement->shut)
        return;
    placement->shut = 1;
    atomic_store(&placement->stopping, 1);
    if (placement->thread_started) {
        sg_wake(&placement->wake);
        pthread_join(placement->thread, NULL);
        placement->thread_started = 0;
    }
    /* Leaving the groups first hands this instance's partitions over at once; the tombstones
     * then take it out of every instance's owner map and standby ring. */
    for (size_t t = 0; t < placement->n_tables; ++t) {
        sg_pl_table_t *table = &placement->tables[t];
        if (table->group != NULL && table->subscribed) {
            if (!table->assigned_once)
                await_first_assignment(table);
            rd_kafka_consumer_close(table->group);
        }
    }
    if (placement->producer != NULL) {
        for (size_t t = 0; t < placement->n_tables; ++t)
            if (placement->set_up)
                publish(placement, &placement->tables[t], 1);
        rd_kafka_flush(placement->producer, timeout_ms);
        rd_kafka_purge(placement->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(placement->producer, 0);
    }
}

void sg_placement_destroy(sg_placement_t *placement)
{
    if (placement == NULL)
        return;
    sg_placement_shutdown(placement, 0);
    for (size_t t = 0; t < placement->n_tables; ++t) {
        sg_pl_table_t *table = &placement->tables[t];
        if (table->group_queue != NULL) {
            rd_kafka_queue_cb_event_enable(table->group_queue, NULL, NULL); /* it names placement->wake */
            rd_kafka_queue_destroy(table->group_queue);
        }
        if (table->group != NULL && !table->unassigned)
            rd_kafka_destroy(table->group);
        free(table->members);
    }
    if (placement->consumer_queue != NULL)
        rd_kafka_queue_destroy(placement->consumer_queue);
    if (placement->consumer != NULL) {
        rd_kafka_consumer_close(placement->consumer);
        rd_kafka_destroy(placement->consumer);
    }
    if (placement->producer_queue != NULL)
        rd_kafka_queue_destroy(placement->producer_queue);
    if (placement->producer_topic != NULL)
        rd_kafka_topic_destroy(placement->producer_topic);
    if (placement->producer != NULL)
        rd_kafka_destroy(placement->producer);
    free(placement->tables);
    free(placement->slot_of);
    pthread_mutex_destroy(&placement->lock);
    sg_wake_dispose(&placement->wake);
    free(placement);
}
