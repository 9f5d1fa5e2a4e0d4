/* t1420-listen: the default listener binds 127.0.0.1 only (checked with
 * getsockname), an ephemeral port is reported, a port in use fails with a
 * message naming the address and port, and bad addresses are refused. */
#include "tap.h"
#include "net/loop.h"
#include "base/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The descriptor of the socket listening on 127.0.0.1:port, found by
 * scanning our own descriptors (the loop does not hand out its fds). */
static int find_listener(uint16_t port, struct sockaddr_storage *out)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int acc = 0;
		socklen_t alen = sizeof(acc);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) < 0 || !acc)
			continue;
		uint16_t p = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
						     : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		if (p == port) {
			*out = ss;
			return fd;
		}
	}
	return -1;
}

int main(void)
{
	alarm(30);
	struct weir_loop_config cfg = { .entries = 8 };
	struct weir_loop *l = weir_loop_create(&cfg);
	if (!l)
		bail("loop: %s", weir_err_msg());
	uint16_t port = 0;
	int id = weir_loop_listen(l, NULL, 0, &port);
	ok(id >= 0, "listen with the default address and port 0");
	ok(port != 0, "the bound ephemeral port is reported (%u)", port);

	struct sockaddr_storage ss;
	int fd = find_listener(port, &ss);
	ok(fd >= 0, "its socket is found");
	char addr[64] = "?";
	if (fd >= 0 && ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
	is_string(addr, "127.0.0.1", "getsockname: bound to 127.0.0.1, not the wildcard");

	/* the same port again, from a second loop */
	struct weir_loop *l2 = weir_loop_create(&cfg);
	weir_err_clear();
	is_int(weir_loop_listen(l2, NULL, port, NULL), -EADDRINUSE, "a port in use: -EADDRINUSE");
	char want[64];
	snprintf(want, sizeof(want), "listen 127.0.0.1:%u: bind: ", port);
	ok(strstr(weir_err_msg(), want) != NULL && strstr(weir_err_msg(), strerror(EADDRINUSE)) != NULL,
	   "the message names the address and port: %s", weir_err_msg());

	is_int(weir_loop_listen(l2, "localhost", 0, NULL), -EINVAL, "a host name is refused (literals only)");
	ok(strstr(weir_err_msg(), "localhost:0") != NULL, "  %s", weir_err_msg());
	is_int(weir_loop_listen(l2, "127.0.0.300", 0, NULL), -EINVAL, "a malformed address is refused");

	uint16_t p6 = 0;
	int id6 = weir_loop_listen(l2, "::1", 0, &p6);
	if (id6 == -EADDRNOTAVAIL || id6 == -EAFNOSUPPORT) {
		char why[300];
		snprintf(why, sizeof(why), "no IPv6 loopback here: %s", weir_err_msg());
		skip(why, 1);
	} else
		ok(id6 >= 0 && p6 != 0, "an IPv6 literal ::1 listens (port %u)", p6);

	is_int(weir_loop_unlisten(l, id), 0, "unlisten");
	is_int(weir_loop_unlisten(l, id), -ENOENT, "unlisten twice: -ENOENT");
	weir_loop_run_once(l, 0);
	is_int(weir_loop_cq_overflow(l), 0, "CQ overflow 0");
	weir_loop_destroy(l2);
	weir_loop_destroy(l);

	struct weir_loop_config bad = { .entries = 1 };
	ok(weir_loop_create(&bad) == NULL, "a ring of 1 entry is refused: %s", weir_err_msg());
	done_testing();
}
