/*
 * engine/connectors/internal.h - what the built-in connectors share.
 */
#ifndef WEIR_CONNECTORS_INTERNAL_H
#define WEIR_CONNECTORS_INTERNAL_H

#include <stddef.h>
#include <weir/weir.h>

/* "base", "base-2", ...: the first operator name env has no operator of. */
void weir_unique_name(weir_env *env, const char *base, char *out, size_t len);

#endif
