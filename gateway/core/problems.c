/*
 * See problems.h: the table is expanded from SG_PROBLEM_TABLE, so a kind cannot exist without
 * its row.
 */
#include "problems.h"

static const sg_problem_info_t problems[SG_PROBLEM_COUNT] = {
#define SG_PROBLEM_ROW(kind, type, status, title, retry_after) [SG_PROBLEM_##kind] = {type, status, title, retry_after},
    SG_PROBLEM_TABLE(SG_PROBLEM_ROW)
#undef SG_PROBLEM_ROW
};

const sg_problem_info_t *sg_problem_info(sg_problem_t kind)
{
    return &problems[(unsigned)kind < SG_PROBLEM_COUNT ? kind : SG_PROBLEM_BAD_REQUEST];
}
