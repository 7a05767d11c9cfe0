/*
 * The encoding plan of a schema (avro_int.h): compiled once when the schema is parsed, so that
 * encoding a value walks C structs instead of resolving the schema's JSON at every value.
 *
 * The plan is built by the same pairing the encoder used to do per value: each Avro-C node is
 * resolved with its JSON definition (sg_avro_resolve), its logical type read (sg_avro_logical_of),
 * and everything the encoder looked up in that JSON is recorded in the node. Whatever that walk
 * made of an odd schema, the plan makes the same, because it calls the same functions on the same
 * pairs. Named types (records, enums, fixed) are memoized on their (node, definition) pair, so
 * each is compiled once and references to it (recursion included) share it.
 */
#include "avro_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

typedef struct {
    avro_schema_t node;
    const json_t *def;
    sg_avro_plan_t *plan;
} memo_entry_t;

typedef struct {
    sg_avro_schema_t *sc;
    memo_entry_t *memo; /* open addressing, a power of two */
    size_t memo_cap, memo_used;
    size_t nodes_cap;
} compiler_t;

static size_t memo_slot(const compiler_t *cc, avro_schema_t node, const json_t *def)
{
    uintptr_t h = (uintptr_t)node * 0x9e3779b97f4a7c15u ^ (uintptr_t)def * 0xc2b2ae3d27d4eb4fu;
    return (size_t)(h ^ (h >> 29)) & (cc->memo_cap - 1);
}

static sg_avro_plan_t *memo_get(const compiler_t *cc, avro_schema_t node, const json_t *def)
{
    for (size_t i = memo_slot(cc, node, def);; i = (i + 1) & (cc->memo_cap - 1)) {
        const memo_entry_t *entry = &cc->memo[i];
        if (entry->plan == NULL)
            return NULL;
        if (entry->node == node && entry->def == def)
            return entry->plan;
    }
}

static void memo_put(compiler_t *cc, avro_schema_t node, const json_t *def, sg_avro_plan_t *plan)
{
    if ((cc->memo_used + 1) * 2 > cc->memo_cap) {
        memo_entry_t *old = cc->memo;
        size_t old_cap = cc->memo_cap;
        cc->memo_cap = old_cap * 2;
        cc->memo = sg_calloc(cc->memo_cap, sizeof(*cc->memo));
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].plan == NULL)
                continue;
            size_t j = memo_slot(cc, old[i].node, old[i].def);
            while (cc->memo[j].plan != NULL)
                j = (j + 1) & (cc->memo_cap - 1);
            cc->memo[j] = old[i];
        }
        free(old);
    }
    size_t i = memo_slot(cc, node, def);
    while (cc->memo[i].plan != NULL)
        i = (i + 1) & (cc->memo_cap - 1);
    cc->memo[i] = (memo_entry_t){node, def, plan};
    cc->memo_used++;
}

static sg_avro_plan_t *new_node(compiler_t *cc)
{
    sg_avro_schema_t *sc = cc->sc;
    if (sc->n_plan_nodes == cc->nodes_cap) {
        cc->nodes_cap = cc->nodes_cap ? cc->nodes_cap * 2 : 16;
        sc->plan_nodes = sg_reallocarray(sc->plan_nodes, cc->nodes_cap, sizeof(*sc->plan_nodes));
    }
    sg_avro_plan_t *plan = sg_calloc(1, sizeof(*plan));
    plan->null_index = -1;
    sc->plan_nodes[sc->n_plan_nodes++] = plan;
    return plan;
}

static const sg_avro_plan_t *compile(compiler_t *cc, avro_schema_t node, const json_t *def)
{
    def = sg_avro_resolve(cc->sc, &node, def);
    int named = is_avro_named_type(node);
    if (named) {
        sg_avro_plan_t *seen = memo_get(cc, node, def);
        if (seen != NULL)
            return seen;
    }
    sg_avro_plan_t *plan = new_node(cc);
    if (named) /* before the children: a recursive reference finds it */
        memo_put(cc, node, def, plan);
    plan->type = avro_typeof(node);
    plan->logical = sg_avro_logical_of(node, def);
    plan->node = node;
    switch (plan->type) {
    case AVRO_BYTES:
    case AVRO_FIXED:
        if (plan->type == AVRO_FIXED)
            plan->fixed_size = avro_schema_fixed_size(node);
        if (plan->logical == LT_DECIMAL) {
            plan->precision = (int)json_integer_value(json_object_get(def, "precision"));
            plan->scale = sg_avro_decimal_scale(def);
        }
        break;
    case AVRO_RECORD: {
        const json_t *fields = json_object_get(def, "fields");
        plan->count = avro_schema_record_size(node);
        plan->fields = sg_calloc(plan->count ? plan->count : 1, sizeof(*plan->fields));
        for (size_t i = 0; i < plan->count; i++) {
            sg_avro_plan_field_t *field = &plan->fields[i];
            const json_t *field_def = json_array_get(fields, i);
            field->name = avro_schema_record_field_name(node, (int)i);
            field->name_len = strlen(field->name);
            field->default_value = json_object_get(field_def, "default");
            field->type = compile(cc, avro_schema_record_field_get_by_index(node, (int)i), json_object_get(field_def, "type"));
        }
        break;
    }
    case AVRO_ARRAY: plan->items = compile(cc, avro_schema_array_items(node), json_object_get(def, "items")); break;
    case AVRO_MAP: plan->items = compile(cc, avro_schema_map_values(node), json_object_get(def, "values")); break;
    case AVRO_UNION: {
        plan->count = avro_schema_union_size(node);
        size_t n = plan->count ? plan->count : 1;
        plan->branches = sg_calloc(n, sizeof(*plan->branches));
        plan->branch_names = sg_calloc(n, sizeof(*plan->branch_names));
        plan->branch_short = sg_calloc(n, sizeof(*plan->branch_short));
        for (size_t i = 0; i < plan->count; i++) {
            avro_schema_t branch = sg_avro_deref(avro_schema_union_branch(node, (int)i));
            if (is_avro_null(branch))
                plan->null_index = (int)i;
            char name[512]; /* the encoder's buffer: a longer name matched only as cut to it */
            sg_avro_branch_name(branch, name, sizeof(name));
            plan->branch_names[i] = sg_strdup(name);
            plan->branch_short[i] = is_avro_named_type(branch) ? avro_schema_name(branch) : NULL;
            plan->branches[i] = compile(cc, avro_schema_union_branch(node, (int)i), json_array_get(def, i));
        }
        break;
    }
    default: break;
    }
    return plan;
}

void sg_avro_plan_compile(sg_avro_schema_t *sc)
{
    compiler_t cc = {.sc = sc, .memo_cap = 64};
    cc.memo = sg_calloc(cc.memo_cap, sizeof(*cc.memo));
    sc->plan = (sg_avro_plan_t *)compile(&cc, sc->schema, sc->json);
    free(cc.memo);
}

void sg_avro_plan_free(sg_avro_schema_t *sc)
{
    for (size_t i = 0; i < sc->n_plan_nodes; i++) {
        sg_avro_plan_t *plan = sc->plan_nodes[i];
        for (size_t b = 0; plan->branch_names != NULL && b < plan->count; b++)
            free(plan->branch_names[b]);
        free(plan->branch_names);
        free(plan->branch_short);
        free(plan->branches);
        free(plan->fields);
        free(plan);
    }
    free(sc->plan_nodes);
    sc->plan_nodes = NULL;
    sc->n_plan_nodes = 0;
    sc->plan = NULL;
}
