/*
 * engine/cli/cli.h - the `weir` command's client subcommands (client.c),
 * `weir cert` (cert.c) and their usage texts.
 *
 * Each usage text is the one source of what `weir CMD --help` prints and
 * of the lines `weir help` shows for CMD: it starts with "usage: weir CMD"
 * and its further lines are indented to follow that prefix, so that
 * weir_usage_print can line several up under one "usage:".
 */
#ifndef WEIR_ENGINE_CLI_H
#define WEIR_ENGINE_CLI_H

#include <stdio.h>

int weir_cluster_main(int argc, char **argv);
int weir_run_main(int argc, char **argv);
int weir_list_main(int argc, char **argv);
int weir_cancel_main(int argc, char **argv);
int weir_savepoint_main(int argc, char **argv);
int weir_stop_main(int argc, char **argv);
int weir_cert_main(int argc, char **argv); /* cert.c */

extern const char weir_run_usage[];
extern const char weir_list_usage[];
extern const char weir_cancel_usage[];
extern const char weir_savepoint_usage[];
extern const char weir_stop_usage[];
extern const char weir_cluster_start_usage[];
extern const char weir_cluster_status_usage[];
extern const char weir_cluster_stop_usage[];
extern const char weir_cluster_dashboard_usage[];
extern const char weir_cert_ca_usage[];
extern const char weir_cert_host_usage[];

/* Print n usage texts to f under one "usage:": the first as it is, each
 * further one with its "usage: " turned into as many spaces. */
void weir_usage_print(FILE *f, const char *const *texts, int n);

#endif
