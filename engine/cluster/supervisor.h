/*
 * engine/cluster/supervisor.h - the local cluster's daemons: starting them, and
 * keeping the TaskManagers alive.
 *
 * weir_spawn starts one `weir ...` process as a daemon (its own session,
 * stdin from /dev/null, stdout and stderr to its log) and waits for the
 * byte it writes on fd 3 once it is ready.
 *
 * The supervisor is a process `weir cluster start` forks (its pid in
 * <run-dir>/supervisor.pid, its log supervisor.log). It starts the
 * TaskManagers, so they are its children, reports their pids back, and
 * stays: a TaskManager that exits while the JobManager lives (kill -9, a
 * crash, a lost connection) is started again with the same arguments,
 * so that jobs waiting to restart regain its slots: at once when it had
 * run a second or more, else after a backoff of 100 ms doubling up to 5 s
 * (a TaskManager that cannot start never spins). It learns of exits through
 * pidfds (no polling) and ends when the JobManager ends or on SIGTERM
 * (`weir cluster stop` sends it first, so a stop is never fought).
 * Restarted TaskManagers run without WEIR_FAILPOINT: a crash test crashes
 * the first incarnation only.
 */
#ifndef WEIR_ENGINE_SUPERVISOR_H
#define WEIR_ENGINE_SUPERVISOR_H

#include <stddef.h>
#include <sys/types.h>

pid_t weir_spawn(char *const args[], const char *logpath, int timeout_ms);

/* Fork the supervisor for the JobManager jm, starting ntm TaskManagers
 * (args[i]: weir_spawn's arguments, logs[i]: its log). 0 with pids[i] and
 * *sup set once all are ready; -1 with the trail naming the first that
 * failed (the supervisor is gone then, and the ones it started stop with
 * the JobManager). */
int weir_supervisor_start(const char *run_dir, pid_t jm, int ntm, char **const *args, char *const *logs, pid_t *pids,
			  pid_t *sup);

/*
 * A TaskManager's last words: <run-dir>/taskmanager-<id>.crash, "PID
 * MESSAGE", written by its crash, exit and watchdog handlers just before
 * it dies (runtime/run.h, weir_guard_start), so always before its
 * connection closes and before its supervisor reaps it. The JobManager
 * quotes it when it loses that TaskManager, the supervisor when it reaps
 * it; the pid tells a note of this process from an earlier one's.
 */
void weir_tm_note_path(const char *run_dir, int id, char *out, size_t n);
/* TaskManager id's note, when process pid wrote it: 1 with the message in
 * out, else 0. */
int weir_tm_note_read(const char *run_dir, int id, pid_t pid, char *out, size_t n);

#endif
