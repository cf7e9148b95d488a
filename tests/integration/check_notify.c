/*
 * check_notify.c - parleyd under a Type=notify unit: with NOTIFY_SOCKET set to
 * a datagram socket this test listens on (as systemd would), the real parleyd
 * sends READY=1 once it answers and STOPPING=1 when SIGTERM starts its drain;
 * a socket it cannot use is logged and changes nothing else.
 */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/harness.h"

/* A datagram socket bound to path ("@name": abstract); its fd. */
static int listen_at(const char *path)
{
	struct sockaddr_un sun;
	size_t n = strlen(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(n, sizeof(sun.sun_path));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	unlink(path);
	ck_assert_int_eq(
	    bind(fd, (struct sockaddr *)&sun,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'))),
	    0);
	return fd;
}

/* The next datagram within timeout_ms (into buf), or "" when none came. */
static const char *next_message(int fd, char *buf, size_t size, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t n;

	buf[0] = '\0';
	if (poll(&p, 1, timeout_ms) != 1)
		return buf;
	n = recv(fd, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void ready_then_stopping(const char *sock)
{
	struct proc fake, parleyd;
	char dbpath[512], backend[200], msg[512];
	const char *args[] = {"--backend", backend, NULL};
	int fd = listen_at(sock);

	ck_assert_int_eq(harness_fake_start(&fake, NULL), 0);
	snprintf(backend, sizeof(backend), "name=ollama,kind=ollama,url=http://127.0.0.1:%d",
		 fake.port);
	snprintf(dbpath, sizeof(dbpath), "%s/notify-%d.db", harness_tmpdir(), (int)getpid());
	setenv("NOTIFY_SOCKET", sock, 1);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
	unsetenv("NOTIFY_SOCKET");
	/* it answered /healthz already, and said so once */
	ck_assert_ptr_nonnull(strstr(next_message(fd, msg, sizeof(msg), 10000), "READY=1"));
	ck_assert_str_eq(next_message(fd, msg, sizeof(msg), 200), "");
	ck_assert_int_eq(harness_stop(&parleyd, SIGTERM), 0);
	ck_assert_ptr_nonnull(strstr(next_message(fd, msg, sizeof(msg), 5000), "STOPPING=1"));
	harness_stop(&fake, SIGTERM);
	close(fd);
}

START_TEST(ready_and_stopping_on_a_path)
{
	char sock[512];

	snprintf(sock, sizeof(sock), "%s/notify.sock", harness_tmpdir());
	ready_then_stopping(sock);
	unlink(sock);
}
END_TEST

START_TEST(ready_and_stopping_in_the_abstract_namespace)
{
	char sock[64];

	snprintf(sock, sizeof(sock), "@parley-notify-test-%d", (int)getpid());
	ready_then_stopping(sock);
}
END_TEST

START_TEST(an_unusable_socket_is_logged_and_nothing_else)
{
	struct proc parleyd;
	char dbpath[512], *log;
	const char *args[] = {NULL};

	snprintf(dbpath, sizeof(dbpath), "%s/notify-bad-%d.db", harness_tmpdir(), (int)getpid());
	setenv("NOTIFY_SOCKET", "not-a-socket-path", 1);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	ck_assert_int_eq(harness_stop(&parleyd, SIGTERM), 0);
	log = harness_slurp(parleyd.log, NULL);
	ck_assert_ptr_nonnull(strstr(log, "cannot notify systemd"));
	free(log);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("sd_notify");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ready_and_stopping_on_a_path);
	tcase_add_test(tc, ready_and_stopping_in_the_abstract_namespace);
	tcase_add_test(tc, an_unusable_socket_is_logged_and_nothing_else);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
