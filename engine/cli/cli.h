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

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int weir_cluster_main(int argc, char **argv);
int weir_run_main(int argc, char **argv);
int weir_list_main(int argc, char **argv);
int weir_cancel_main(int argc, char **argv);
int weir_savepoint_main(int argc, char **argv);
int weir_stop_main(int argc, char **argv);
int weir_cert_main(int argc, char **argv); /* cert.c */
int weir_top_main(int argc, char **argv);  /* top.c */

extern const char weir_run_usage[];
extern const char weir_list_usage[];
extern const char weir_cancel_usage[];
extern const char weir_savepoint_usage[];
extern const char weir_stop_usage[];
extern const char weir_cluster_start_usage[];
extern const char weir_cluster_status_usage[];
extern const char weir_cluster_stop_usage[];
extern const char weir_cluster_dashboard_usage[];
extern const char weir_top_usage[];
extern const char weir_cert_ca_usage[];
extern const char weir_cert_host_usage[];

/* Print n usage texts to f under one "usage:": the first as it is, each
 * further one with its "usage: " turned into as many spaces. */
void weir_usage_print(FILE *f, const char *const *texts, int n);

/* top.c: GET path of the JobManager's REST API over c (RestRequest): the
 * JSON answer (*status its HTTP status), or NULL with the trail set. */
struct weir_ctl_client;
typedef struct json_t json_t;
json_t *weir_cli_rest_get(struct weir_ctl_client *c, const char *path, int *status);

/* top.c: weir run's progress line while it waits for job id (on stderr,
 * redrawn by each draw); NULL (nothing drawn) with quiet or when stdout or
 * stderr is not a terminal. stop erases it. */
struct weir_rundir;
struct weir_run_progress;
struct weir_run_progress *weir_run_progress_start(const struct weir_rundir *rd, uint64_t id, bool quiet);
void weir_run_progress_draw(struct weir_run_progress *p);
void weir_run_progress_stop(struct weir_run_progress *p);

#endif
